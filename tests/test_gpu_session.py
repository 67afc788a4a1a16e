"The GPU-session script (scripts/gpu_session.py): a dry run on the CPU, so a lent GPU's minutes are not spent on its bugs."
import hashlib, importlib.util, json, os, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_session.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m


def test_progress_bars_collapse_to_their_last_state():
    m = _module()
    assert m.as_terminal_shows(" 10%|#  | 1/10\r 50%|## | 5/10\r100%|###| 10/10\nnext line\n") == "100%|###| 10/10\nnext line\n"
    assert m.as_terminal_shows("plain\ntext") == "plain\ntext"


def test_training_gets_what_the_deadline_leaves(monkeypatch):
    m = _module()
    monkeypatch.setattr(m.time, "monotonic", lambda: 100.0)
    assert m.minutes_left(t0=40.0, deadline_s=480, reserve_s=60) == pytest.approx(6.0)    # (480 − 60 − 60) / 60
    assert m.minutes_left(t0=0.0, deadline_s=120, reserve_s=60) == 0.5                     # never less than half a minute


def test_paper_scale_needs_cuda():
    import torch
    if torch.cuda.is_available(): pytest.skip("this machine has CUDA")
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", "unused"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 1 and "no CUDA device here" in r.stderr and "--scale tiny" in r.stderr


def test_dry_run_fills_a_copy_of_the_notebook(tmp_path):
    nb = REPO / "nbs" / "07_gpu_training.ipynb"
    before = hashlib.sha256(nb.read_bytes()).hexdigest()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(SCRIPT), "--scale", "tiny", "--deadline-s", "45", "--bench-s", "3",
                        "--out", str(tmp_path)], capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert hashlib.sha256(nb.read_bytes()).hexdigest() == before          # the checkout's notebook is untouched
    assert {p.name for p in tmp_path.iterdir()} == {"07_gpu_training.ipynb", "gpu_check.json", "gpu_training.gif"}
    cells = [c for c in json.loads((tmp_path / "07_gpu_training.ipynb").read_text())["cells"] if c["cell_type"] == "code"]
    gpu = [c for c in cells if "#| gpu" in "".join(c["source"])]
    assert gpu and all(c.get("outputs") for c in gpu[:2])                 # the benchmark and the run printed
    assert not any(o["output_type"] == "error" for c in cells for o in c.get("outputs", []))
    printed = "".join("".join(o.get("text", "")) for c in gpu for o in c.get("outputs", []))
    assert "'kinds': ['traffic']" in printed and "gpu_training.gif: traffic" in printed   # one scene, rendered within budget
    assert all("assert" in "".join(c["source"]) or "test_" in "".join(c["source"]) for c in gpu)   # every GPU cell checks
    check = json.loads((tmp_path / "gpu_check.json").read_text())
    # the fast row is "fast + bf16" on a CPU with native bf16 (the fast trainer's default there)
    assert check["scale"] == "tiny" and [r["step"] for r in check["train"]] in (["reference", "fast"], ["reference", "fast + bf16"])
