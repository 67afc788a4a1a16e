"""Score the shipped model's kept weights against steps: PSNR, SSIM and the semantic score on the demo's unseen clips.

    python scripts/shipped_curve.py            # every copy in the run's kept/ folder, and the shipped model itself

`scripts/train_shipped_model.py` keeps an inference copy of the weights every 2,000 steps (outside the repository);
this scores each with `scripts/score_checkpoints.py` (the demo's four test clips, its segmenter, every baseline),
writes results/shipped-traffic-tiny-64/curve.json (small, committed) and draws assets/shipped_steps_curve.png with
`i2vgan.train.plot_steps_curve`. It also copies the run's loss log, one row every --log-every steps, to
results/shipped-traffic-tiny-64/log.jsonl (committed beside the curve; notebook 04 plots it).
"""
import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import score_checkpoints                                   # noqa: E402  (a sibling script)
from i2vgan.train import MODELS_DIR, plot_steps_curve     # noqa: E402

NAME = "traffic-tiny-64"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=str(Path.home() / ".cache" / "i2vgan" / f"shipped-{NAME}" / "run"))
    p.add_argument("--out", default=str(ROOT / "results" / f"shipped-{NAME}" / "curve.json"))
    p.add_argument("--figure", default=str(ROOT / "assets" / "shipped_steps_curve.png"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--planned", type=int, default=18000, help="the run's planned steps (train_shipped_model.py --steps)")
    p.add_argument("--log-every", type=int, default=250, help="steps between the rows of the loss log copied beside the curve")
    a = p.parse_args(argv)
    run = Path(a.run).expanduser()
    kept = sorted((run / "kept").glob("step_*.pt"))
    if not kept: sys.exit(f"error: {run / 'kept'}: no kept weights (step_*.pt) to score")
    res = score_checkpoints.main([*map(str, kept), NAME, "--threads", str(a.threads)])
    card = json.loads((MODELS_DIR / f"{NAME}.json").read_text())
    metrics = ("psnr", "ssim", "pixel acc", "class acc", "mIoU", "vehicle IoU")
    row = lambda s: {m: s[m] for m in metrics}
    sittings = json.loads((run / "sittings.json").read_text()) if (run / "sittings.json").exists() else []
    curve = dict(
        run=dict(planned_steps=a.planned, sittings=sittings, cpu_hours=round(sum(s["cpu_seconds"] for s in sittings) / 3600, 2),
                 wall_hours=round(sum(s["wall_seconds"] for s in sittings) / 3600, 2), precision="float32"),
        points=[{"step": res["steps"][str(k)], **row(res["scores"][str(k)])} for k in kept],
        shipped={"name": NAME, "steps": card["steps"], "date": card["date"], **row(res["scores"][NAME])},
        baselines={k: row(v) for k, v in res["scores"].items() if k not in {str(x) for x in kept} | {NAME}},
        test_clips=res["test_clips"], segmenter=res["segmenter"], date=time.strftime("%Y-%m-%d"), torch=res["torch"])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(curve, indent=1) + "\n")
    plot_steps_curve(curve).savefig(a.figure, dpi=80, bbox_inches="tight")
    print("wrote", a.out, "and", a.figure)
    log = thin_log(run / "log.jsonl", a.log_every)
    if log:
        (Path(a.out).parent / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
        print("wrote", Path(a.out).parent / "log.jsonl", f"({len(log)} rows)")


def thin_log(path, every:int) -> list:
    "The rows of a run's log.jsonl whose step is a multiple of `every` ([] if there is no log)."
    path = Path(path)
    if not path.exists(): return []
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    return [r for r in rows if r["step"] % every == 0]


if __name__ == "__main__": main()
