"""Peak memory and throughput of `i2vgan translate` against the clip's length, on the CPU.

    python scripts/translate_memory.py [--frames 100,2000 --size 256 --threads 1]
                                       [--baseline DIR --baseline-frames 100 --baseline-name main --repeat 2 --library-reps 3]

The committed results came from (DIR: `git archive <commit> i2vgan | tar -x -C DIR`, the library before streaming):

    python scripts/translate_memory.py --baseline DIR --baseline-name "main bebce55"            # translate-memory.json
    python scripts/translate_memory.py --frames 100 --baseline DIR --baseline-name "main bebce55" --repeat 2 \
        --library-reps 3 --out results/translate-memory/throughput-100.json

Each run is one `i2vgan translate` (`cli.main`) in a child process: the shipped tiny model (`traffic-tiny-64`) turns a
synthetic MP4 clip of `--size`² frames into an MP4. The child's peak memory is its RSS high-water mark (`wait4`'s
`ru_maxrss`: the Python process; ffmpeg's encoder and decoder are processes of their own, the same for every length);
throughput is frames over the seconds `main` takes (loading the model, reading, translating, writing; the
imports before it are timed apart as start-up), by the clock and by the process's CPU time (which a busy shared
machine disturbs far less; ffmpeg's own processes are not in it). The input clips are
written one frame at a time, so making a long one holds no more than a frame. `--baseline DIR` also times the library
found in DIR (e.g. an older version unpacked with `git archive`) on `--baseline-frames`. Writes
results/translate-memory/translate-memory.json with the CPU model and the date.
"""
from __future__ import annotations
import argparse, datetime, json, os, subprocess, sys, tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np
from i2vgan.data import write_video
from i2vgan.reproduce import machine_info

MODEL = "traffic-tiny-64"


def synthetic_frames(n:int, size:int, seed:int=0):
    "A moving bright box on a noisy gradient, one uint8 size×size×3 frame at a time (nothing kept)."
    rng = np.random.default_rng(seed)
    ramp = np.linspace(40, 120, size, dtype=np.float32)[None, :] + np.zeros((size, 1), np.float32)
    for t in range(n):
        f = ramp + rng.normal(0, 6, (size, size)).astype(np.float32)
        x = (7 * t) % (size - size // 4); y = size // 3
        f[y:y + size // 6, x:x + size // 4] += 100
        yield np.repeat(np.clip(f, 0, 255).astype(np.uint8)[..., None], 3, -1)


CHILD = """import sys, time, json
t0 = time.perf_counter()
from i2vgan import cli
t1 = time.perf_counter()
c1 = time.process_time()
cli.main(sys.argv[1:])
print(json.dumps(dict(startup_s=t1 - t0, seconds=time.perf_counter() - t1, cpu_s=time.process_time() - c1)))"""

LIBRARY = """import sys, time, json, numpy as np, torch
from i2vgan.train import load_trained
m = load_trained(sys.argv[1], "cpu")
x = np.random.default_rng(0).integers(0, 256, (int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[3]), 3), dtype=np.uint8)
best = []
for _ in range(int(sys.argv[4])):
    t = time.perf_counter(); m.translate(x); best.append(time.perf_counter() - t)
print(json.dumps(dict(seconds=min(best))))"""

def library_run(code:Path, n:int, size:int, reps:int, threads:int) -> float:
    "`model.translate` on n in-memory frames in a child process whose library comes from `code`: the best of `reps` times."
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    r = subprocess.run([sys.executable, "-c", LIBRARY, MODEL, str(n), str(size), str(reps)], env=env, capture_output=True, text=True,
                       cwd=tempfile.gettempdir())
    if r.returncode: sys.exit(f"translate failed: {r.stderr.strip()}")
    return json.loads(r.stdout.strip().splitlines()[-1])["seconds"]

def translate_run(code:Path, src:Path, out:Path, threads:int, extra=()) -> dict:
    "One `i2vgan translate` in a child process whose library comes from `code`: its seconds and peak RSS in MB."
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-c", CHILD, "translate", "--checkpoint", MODEL, "--input", str(src), "--output", str(out),
           "--device", "cpu", "--overwrite", *extra]
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(p.pid, 0)                   # this child's own rusage: its RSS high-water mark
    out_text, err = p.stdout.read().decode(), p.stderr.read().decode()
    if os.waitstatus_to_exitcode(status): sys.exit(f"translate failed: {err.strip()}")
    t = json.loads(out_text.strip().splitlines()[-1])
    return dict(seconds=round(t["seconds"], 2), cpu_s=round(t["cpu_s"], 2), startup_s=round(t["startup_s"], 2),
                peak_rss_mb=round(usage.ru_maxrss / 1024, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", default="100,2000", help="clip lengths for this checkout (default: 100,2000)")
    ap.add_argument("--size", type=int, default=256, help="frame size in pixels (default: 256)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of each run (default: 1)")
    ap.add_argument("--side-by-side", action="store_true", help="also time --side-by-side --fuse on the longest clip")
    ap.add_argument("--baseline", default=None, help="a folder holding an older i2vgan/ to time as well (default: none)")
    ap.add_argument("--baseline-frames", default="100", help="clip lengths for --baseline (default: 100)")
    ap.add_argument("--baseline-name", default="baseline", help="its name in the results (default: baseline)")
    ap.add_argument("--repeat", type=int, default=1, help="run the lengths shared with --baseline this many times, alternating (default: 1)")
    ap.add_argument("--library-frames", type=int, default=32, help="frames of the in-memory `model.translate` timing (default: 32)")
    ap.add_argument("--library-reps", type=int, default=0, help="its repetitions per process, the best kept (default: 0, not run)")
    ap.add_argument("--out", default=str(REPO / "results" / "translate-memory" / "translate-memory.json"), help="results file")
    a = ap.parse_args()
    ours = [("this checkout", REPO, int(n), ()) for n in a.frames.split(",")]
    base = [(a.baseline_name, Path(a.baseline), int(n), ()) for n in a.baseline_frames.split(",")] if a.baseline else []
    longest = max(r[2] for r in base) if base else 0
    runs = ([r for r in ours if r[2] <= longest] + base) * a.repeat + [r for r in ours if r[2] > longest]   # equal lengths close in time
    if a.side_by_side: runs.append(("this checkout", REPO, ours[-1][2], ("--side-by-side", "--fuse")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for n in sorted({r[2] for r in runs}):
            clips[n] = write_video(synthetic_frames(n, a.size), Path(tmp) / f"in{n}.mp4", fps=25)
        for code_name, code, n, extra in runs:
            r = translate_run(code, clips[n], Path(tmp) / "out.mp4", a.threads, extra)
            rows.append(dict(code=code_name, frames=n, options=" ".join(extra), **r, frames_per_s=round(n / r["seconds"], 2),
                             frames_per_cpu_s=round(n / r["cpu_s"], 2),
                             load_avg_1min=round(os.getloadavg()[0], 1)))        # a shared machine: how busy it was
            print(f"{code_name:>14} {n:5d} frames {' '.join(extra):24s} {r['seconds']:8.1f} s  {rows[-1]['frames_per_s']:6.2f} frames/s  "
                  f"{rows[-1]['frames_per_cpu_s']:6.2f} frames/CPU-s  "
                  f"peak {r['peak_rss_mb']:7.0f} MB", flush=True)
    library = []
    for _ in range(a.library_reps and a.repeat):                # the library alone, best of a few: less disturbed by a busy machine
        for code_name, code in [("this checkout", REPO)] + ([(a.baseline_name, Path(a.baseline))] if a.baseline else []):
            sec = library_run(code, a.library_frames, a.size, a.library_reps, a.threads)
            library.append(dict(code=code_name, frames=a.library_frames, best_of=a.library_reps, seconds=round(sec, 2),
                                frames_per_s=round(a.library_frames / sec, 2)))
            print(f"{code_name:>14} model.translate, {a.library_frames} frames in memory, best of {a.library_reps}: "
                  f"{sec:.1f} s  {a.library_frames / sec:.2f} frames/s", flush=True)
    ours = [r for r in rows if r["code"] == "this checkout" and not r["options"]]
    res = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), machine=machine_info(),
               model=MODEL, size=a.size, threads=a.threads, batch_size=16, rows=rows, library=library,
               peak_ratio_longest_to_shortest=round(ours[-1]["peak_rss_mb"] / ours[0]["peak_rss_mb"], 3))
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"peak memory, {ours[-1]['frames']} frames / {ours[0]['frames']} frames: {res['peak_ratio_longest_to_shortest']:.3f} → {out}")


if __name__ == "__main__": main()
