"""Train the model that ships with i2vgan (`i2vgan/models/traffic-tiny-64.pt`) and write its card.

    python scripts/train_shipped_model.py --steps 18000 --threads 1          # train (resumes; run it as often as needed)
    python scripts/train_shipped_model.py --steps 18000 --ship               # ship the newest state now, with its card

The recipe is the demo's (the `i2vgan` preset at the `tiny` scale with a 70-pixel PatchGAN, 64-pixel frames of the
built-in synthetic world's traffic scenes — one model per scene, as the paper trains — the fast training step on the
CPU), trained for hours on six times as many layouts. The run lives outside the repository (--out, by default
~/.cache/i2vgan/shipped-traffic-tiny-64) and resumes from its last checkpoint when started again: a run of hours
spans several sittings. Every sitting is recorded (steps, wall and CPU seconds, whether it was interrupted), and an
inference copy of the weights is kept every --keep-every steps, so that `--ship` (or the end of training) can
score the world's unseen test clips, save an inference checkpoint (config and weights, no optimiser state) and
write the card beside it.
"""
import argparse, json, os, platform, time
from pathlib import Path
import numpy as np
import torch

from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.data import irvi_dataset
from i2vgan.fast import make_trainer
from i2vgan.metrics import irvi_clips, psnr, ssim
from i2vgan.train import load_trained
from i2vgan.world import make_world

MODELS = Path(__file__).resolve().parent.parent / "i2vgan" / "models"
NAME = "traffic-tiny-64"
WORLD = dict(size=64, n_train=96, train_frames=12, n_test=4, test_frames=16, kinds=("traffic",), seed=0)  # test clips = the demo's
D_LAYERS = 3   # a 70-pixel PatchGAN: at 64 px it judges the whole scene, as in the demo


def score(model, root) -> dict:
    "PSNR/SSIM per test clip and their means, per-frame translation and with predictor fusion."
    per_clip = {"per frame": {}, "predictor fused": {}}
    for name, ir, gt in irvi_clips(root):
        for key, frames in (("per frame", model.translate(ir)), ("predictor fused", model.translate(ir, fuse_predictor=True))):
            per_clip[key][name] = {"psnr": round(psnr(frames, gt), 4), "ssim": round(ssim(frames, gt), 4)}
    mean = {k: {m: round(float(np.mean([c[m] for c in v.values()])), 4) for m in ("psnr", "ssim")} for k, v in per_clip.items()}
    return {"mean": mean, "per_clip": per_clip}


def log_rates(run) -> dict:
    "From the log: the median training speed (steps/s) and the seconds lost to stalls (intervals over 10× the median)."
    rows = [json.loads(l) for l in (Path(run) / "log.jsonl").read_text().splitlines() if l.strip()]
    pairs = [(b["step"] - a["step"], b["time"] - a["time"]) for a, b in zip(rows, rows[1:]) if b["time"] > a["time"]]
    if not pairs: return {}
    per_step = float(np.median([dt / n for n, dt in pairs]))
    stalled = sum(dt - n * per_step for n, dt in pairs if dt > 10 * n * per_step)
    return {"median_steps_per_second": round(1 / per_step, 3), "stalled_seconds": round(stalled, 1)}


def record_sitting(run, entry) -> list:
    "Add or update this sitting's entry in run/sittings.json (written atomically); return all sittings."
    path = Path(run) / "sittings.json"
    sittings = json.loads(path.read_text()) if path.exists() else []
    sittings = [x for x in sittings if x["started"] != entry["started"]] + [entry]
    tmp = path.with_suffix(".tmp"); tmp.write_text(json.dumps(sittings, indent=1) + "\n"); os.replace(tmp, path)
    return sittings


def keep_weights(model, cfg, run, step) -> Path:
    "An inference copy (config + float32 weights) of the model at `step`, for the steps curve."
    path = Path(run) / "kept" / f"step_{step:07d}.pt"; path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": cfg.to_dict(), "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                "step": step}, path)
    return path


def train(trainer, model, cfg, run, steps, keep_every, threads):
    "Resume, then train to `steps`, recording the sitting every 250 steps and keeping weights every `keep_every`."
    trainer.fit(0, resume=True)                                       # load the newest checkpoint that loads, if any
    entry = dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), threads=threads, planned_steps=steps,
                 start_step=trainer.step, end_step=trainer.step, wall_seconds=0.0, cpu_seconds=0.0, finished=False)
    t0, c0 = time.perf_counter(), time.process_time()
    while trainer.step < steps:                                       # chunks of 250 steps: an interruption loses little
        trainer.fit(min(steps, (trainer.step // 250 + 1) * 250), resume=True)   # resume: the checkpoint just written
        if trainer.step % keep_every == 0 or trainer.step == steps: keep_weights(model, cfg, run, trainer.step)
        entry.update(end_step=trainer.step, wall_seconds=round(time.perf_counter() - t0, 1),
                     cpu_seconds=round(time.process_time() - c0, 1), finished=trainer.step >= steps)
        record_sitting(run, entry)


def ship(model, cfg, out, a, trainer):
    "Save the float16 inference checkpoint into the package, score what ships and write the card."
    MODELS.mkdir(exist_ok=True)
    ckpt = MODELS / f"{NAME}.pt"
    half = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in model.state_dict().items()}
    torch.save({"config": cfg.to_dict(), "model": half}, ckpt)      # float16 on disk: under 10 MB in the repository
    shipped = load_trained(ckpt, device="cpu")                       # score what ships, as a user loads it
    root = out / "world"
    metrics = score(shipped, root)
    sittings = json.loads((out / "run" / "sittings.json").read_text()) if (out / "run" / "sittings.json").exists() else []
    card = dict(name=NAME, file=ckpt.name, size_mb=round(ckpt.stat().st_size / 1e6, 2),
                command=f"python scripts/train_shipped_model.py --steps {a.steps} --threads {a.threads}",
                preset="i2vgan", scale="tiny", precision="float32", frame_size=cfg.size, steps=trainer.step, planned_steps=a.steps,
                world={**WORLD, "kinds": list(WORLD["kinds"])},
                train_seconds=round(trainer.elapsed, 1), cpu_hours=round(sum(x["cpu_seconds"] for x in sittings) / 3600, 2),
                **log_rates(out / "run"),
                sittings=[{k: x.get(k) for k in ("started", "threads", "planned_steps", "start_step", "end_step", "wall_seconds",
                                                 "cpu_seconds", "finished")} for x in sittings],
                machine=f"{platform.machine()} CPU", device="cpu",
                torch=torch.__version__, date=time.strftime("%Y-%m-%d"), vgg_weights=model.weights_used, weights_on_disk="float16 (loaded into float32)",
                test_clips=[name for name, _, _ in irvi_clips(root)], metrics=metrics["mean"],
                metrics_per_clip=metrics["per_clip"])
    (MODELS / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=18000, help="planned steps in total (half at full lr, half decaying; may change between sittings until the decay begins)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep-every", type=int, default=2000, help="steps between kept inference copies (the steps curve)")
    ap.add_argument("--out", default=str(Path.home() / ".cache" / "i2vgan" / f"shipped-{NAME}"))
    ap.add_argument("--ship", action="store_true", help="don't train: ship the newest checkpoint now, with its card")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out).expanduser(); out.mkdir(parents=True, exist_ok=True)
    root = make_world(out / "world", workers=2, **WORLD)
    cfg = I2VGANConfig.preset("i2vgan", "tiny", size=WORLD["size"], n_layers_d=D_LAYERS, seed=0,
                              n_steps=a.steps // 2, n_steps_decay=a.steps - a.steps // 2)
    model = I2VGAN(cfg)
    trainer = make_trainer(model, irvi_dataset(root, "train", size=cfg.size), out / "run", fast=True, device="cpu",
                           ckpt_every=250, keep=2, sample_every=2000, log_every=25, progress=False,
                           amp=False)   # float32, as the run began (bf16 rounding would change the recipe mid-run)
    if a.ship:
        trainer.fit(0, resume=True)                                   # load the newest checkpoint, train nothing
    else:
        train(trainer, model, cfg, out / "run", a.steps, a.keep_every, a.threads)
    if a.ship or trainer.step >= a.steps: ship(model, cfg, out, a, trainer)


if __name__ == "__main__":
    main()
