#!/usr/bin/env python
"""Fill in `nbs/07_gpu_training.ipynb` on a CUDA machine in one go, within a deadline, keeping its outputs.

On the GPU machine, from the repository root (about 8 minutes with the defaults):

    python scripts/gpu_session.py --out outputs/gpu_session

The notebook runs top to bottom in place, as under Jupyter (from nbs/): the CPU dry run, `gpu_check` (benchmarks,
equivalence on CUDA, profile, torch.compile) within `--bench-s`, the traffic world rendered with as many layouts as
`--world-share` of the deadline allows (timed from one clip first), then training for whatever the deadline leaves,
the loss curves, samples and `assets/gpu_training.gif`. After every cell the notebook is also written to `--out`,
so a run cut short still returns what it measured; `gpu_check.json` and the GIF are copied there at the end.
A cell that fails is reported and the rest still run; the exit status is 1 if any cell failed.

It needs PyTorch's usual stack (torch, torchvision, numpy, scikit-image, imageio, matplotlib, pillow) plus a few
pure-Python packages to run a notebook without Jupyter. For a machine with no package index, fetch those here:

    python scripts/gpu_session.py --download-wheels .whl
    # there: pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site

`--scale tiny` is a dry run of the same path on a CPU (small networks, minutes).
"""
import argparse, os, shutil, subprocess, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = Path("nbs") / "07_gpu_training.ipynb"
PRODUCTS = [Path("assets") / "gpu_training.gif", Path("outputs") / "gpu_check" / "gpu_check.json"]
# What running a notebook with execnb needs beyond a CUDA image's PyTorch stack (tested versions; all pure Python).
WHEELS = ["execnb==0.1.18", "fastcore==1.14.5", "ipython==9.18.1", "ipython_pygments_lexers==1.1.1", "jedi==0.20.1",
          "parso==0.8.7", "matplotlib-inline==0.2.2", "pexpect==4.9.0", "ptyprocess==0.7.0", "prompt_toolkit==3.0.53",
          "wcwidth==0.9.4", "stack-data==0.6.3", "asttokens==3.0.2", "executing==2.3.0", "pure_eval==0.2.4",
          "traitlets==5.16.1", "tqdm==4.70.1"]

def download_wheels(dest:Path):
    "Download `WHEELS` (no dependencies: the list is complete) into `dest`."
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dest), *WHEELS],
                   check=True)
    print(f"{len(list(dest.glob('*.whl')))} wheels in {dest}")

def minutes_left(t0:float, deadline_s:float, reserve_s:float) -> float:
    "Training minutes that still fit: the deadline less what has run and what the cells after training need."
    return max(0.5, (deadline_s - (time.monotonic() - t0) - reserve_s) / 60)

def as_terminal_shows(text:str) -> str:
    "Progress bars redraw a line with carriage returns; keep only what a terminal would end up showing."
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))

def run_notebook(out:Path, deadline_s:float, bench_s:float, scale:str, root:Path=REPO, reserve_s:float=75,
                 world_share:float=0.15) -> list:
    "Execute the notebook under `root` in place; returns [(cell number, error)] for the cells that failed."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    t0 = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    if root != REPO:                       # a dry run: a copy of the notebook, so nothing in the checkout changes
        for d in ("nbs", "assets"): (root / d).mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / NOTEBOOK, root / NOTEBOOK)
    os.environ.update(I2VGAN_SCALE=scale, I2VGAN_BENCH_S=str(bench_s), I2VGAN_WORLD_S=f"{world_share * deadline_s:.0f}",
                      PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    sys.path.insert(0, str(REPO))          # the notebook imports i2vgan from this checkout, as its child processes do
    cwd = os.getcwd()
    os.chdir(root / NOTEBOOK.parent)       # notebooks run from nbs/, as under Jupyter and nbdev_test
    nb, shell, failed = read_nb(root / NOTEBOOK), CaptureShell(), []
    def before(cell):
        if cell.cell_type != "code": return False
        if "I2VGAN_MINUTES" in cell.source:
            os.environ["I2VGAN_MINUTES"] = f"{minutes_left(t0, deadline_s, reserve_s):.2f}"
            print(f"training for {os.environ['I2VGAN_MINUTES']} minutes", flush=True)
        print(f"[{time.monotonic() - t0:5.0f} s] cell {cell.idx_}: {cell.source.splitlines()[-1][:70]}", flush=True)
        return False
    def after(cell):                       # echo what the cell printed (it is captured into the notebook)
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                o["text"] = as_terminal_shows("".join(o["text"]))
                print(o["text"], end="", flush=True)
            if o.get("output_type") == "error": print(f"{o['ename']}: {o['evalue']}", flush=True)
        if cell.cell_type == "code" and shell.exc is not None:     # (a markdown cell leaves the last error standing)
            failed.append((cell.idx_, f"{type(shell.exc).__name__}: {shell.exc}"[:300]))
        write_nb(nb, out / NOTEBOOK.name)
    try: shell.run_all(nb, preproc=before, postproc=after)
    finally: os.chdir(cwd)
    write_nb(nb, root / NOTEBOOK)
    for p in PRODUCTS:
        if (root / p).exists(): shutil.copy2(root / p, out / p.name)
    print(f"done in {time.monotonic() - t0:.0f} s; notebook written to {root / NOTEBOOK} and {out}", flush=True)
    return failed

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="outputs/gpu_session", help="where the notebook, gpu_check.json and the GIF are copied")
    ap.add_argument("--deadline-s", type=float, default=480, help="total seconds; training gets what the rest leaves")
    ap.add_argument("--bench-s", type=float, default=200, help="time budget of gpu_check")
    ap.add_argument("--world-share", type=float, default=0.15, help="share of the deadline for rendering the world")
    ap.add_argument("--scale", default="paper", choices=["paper", "tiny"],
                    help="tiny: a dry run on a CPU, in a scratch copy (the checkout is left as it is)")
    ap.add_argument("--download-wheels", metavar="DIR", help="only download the pure-Python packages it needs to DIR")
    a = ap.parse_args(argv)
    if a.download_wheels: download_wheels(Path(a.download_wheels)); return 0
    try: import execnb, torch  # noqa: F401
    except ImportError as e:
        sys.exit(f"gpu_session: {e.name} is not installed (pip install {e.name}, or see --download-wheels)")
    if a.scale == "paper" and not torch.cuda.is_available():
        sys.exit("gpu_session: no CUDA device here; the paper-scale run needs one (--scale tiny for a CPU dry run)")
    out = Path(a.out).resolve()
    if a.scale == "paper": failed = run_notebook(out, a.deadline_s, a.bench_s, a.scale, world_share=a.world_share)
    else:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            failed = run_notebook(out, a.deadline_s, a.bench_s, a.scale, Path(tmp), world_share=a.world_share)
    for idx, err in failed: print(f"cell {idx} FAILED: {err}")
    return 1 if failed else 0

if __name__ == "__main__": sys.exit(main())
