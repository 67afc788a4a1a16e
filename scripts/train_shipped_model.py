"""Train the model that ships with i2vgan (`i2vgan/models/traffic-tiny-64.pt`) and write its card.

    python scripts/train_shipped_model.py --steps 5000 --out outputs/shipped

The recipe is the demo's (the `i2vgan` preset at the `tiny` scale with a 70-pixel PatchGAN, 64-pixel frames of the
built-in synthetic world's traffic scenes — one model per scene, as the paper trains — the fast training step on the
CPU), trained for longer on three times as many layouts. It resumes from its last
checkpoint when run again with the same --out. At the end it scores the world's unseen test clips, saves an
inference checkpoint (config and weights, no optimiser state) and writes the card beside it.
"""
import argparse, json, platform, time
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
WORLD = dict(size=64, n_train=48, train_frames=12, n_test=4, test_frames=16, kinds=("traffic",), seed=0)  # test clips = the demo's
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="outputs/shipped")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    root = make_world(out / "world", workers=2, **WORLD)
    cfg = I2VGANConfig.preset("i2vgan", "tiny", size=WORLD["size"], n_layers_d=D_LAYERS, seed=0,
                              n_steps=a.steps // 2, n_steps_decay=a.steps - a.steps // 2)
    model = I2VGAN(cfg)
    trainer = make_trainer(model, irvi_dataset(root, "train", size=cfg.size), out / "run", fast=True, device="cpu",
                           ckpt_every=500, sample_every=1000, log_every=25)
    trainer.fit(a.steps, resume=True)
    MODELS.mkdir(exist_ok=True)
    ckpt = MODELS / f"{NAME}.pt"
    half = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in model.state_dict().items()}
    torch.save({"config": cfg.to_dict(), "model": half}, ckpt)      # float16 on disk: under 10 MB in the repository
    shipped = load_trained(ckpt, device="cpu")                       # score what ships, as a user loads it
    metrics = score(shipped, root)
    card = dict(name=NAME, file=ckpt.name, size_mb=round(ckpt.stat().st_size / 1e6, 2),
                command=f"python scripts/train_shipped_model.py --steps {a.steps} --threads {a.threads}",
                preset="i2vgan", scale="tiny", frame_size=cfg.size, steps=a.steps, world={**WORLD, "kinds": list(WORLD["kinds"])},
                train_seconds=round(trainer.elapsed, 1), **log_rates(out / "run"),
                machine=f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads", device="cpu",
                torch=torch.__version__, date=time.strftime("%Y-%m-%d"), vgg_weights=model.weights_used, weights_on_disk="float16 (loaded into float32)",
                test_clips=[name for name, _, _ in irvi_clips(root)], metrics=metrics["mean"],
                metrics_per_clip=metrics["per_clip"])
    (MODELS / f"{NAME}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
