"""Score trained models on the demo's unseen test clips: PSNR, SSIM and the semantic score, beside every baseline.

    python scripts/score_checkpoints.py                                    # the shipped model
    python scripts/score_checkpoints.py run/ckpt_001000.pt run/ckpt_002000.pt --out steps.json   # a steps curve

The test clips and the segmenter are the demo's (`i2vgan demo`): the traffic scenes of the built-in world at 64 px,
rendered once into --world (default ~/.cache/i2vgan/demo-world), read by the segmenter shipped for 64-pixel
traffic (`world_segmenter`). Each checkpoint
is scored per frame (no predictor fusion). The baselines are scored once: the per-pixel colouriser (fitted on the
paired training frames), the mean visible training frame, the untrained generator of the first checkpoint's config
(same seed), the infrared frame copied as RGB, and the ground truth read by the segmenter (the upper bound).
"""
import argparse, json, time
from pathlib import Path
import numpy as np
import torch

from i2vgan.cli import DEMO_WORLD, demo_semantic, mean_visible_frame, paired_lut
from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.metrics import irvi_clips, psnr, ssim
from i2vgan.train import load_trained
from i2vgan.world import apply_lut, make_world


def score_all(methods:dict, clips:list, root) -> dict:
    "{method: {psnr, ssim, pixel acc, class acc, mIoU, vehicle IoU}} for {method: callable infrared → frames}."
    frames = {name: {m: f(ir) for m, f in methods.items()} for name, ir, _ in clips}
    semantic, seg = demo_semantic(root, frames)
    out = {}
    for m in methods:
        out[m] = {"psnr": round(float(np.mean([psnr(frames[n][m], gt) for n, _, gt in clips])), 4),
                  "ssim": round(float(np.mean([ssim(frames[n][m], gt) for n, _, gt in clips])), 4), **semantic[m]}
    out["ground truth (upper bound)"] = {"psnr": None, "ssim": None, **semantic["ground truth (upper bound)"]}
    return out, seg


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", nargs="*", default=["traffic-tiny-64"], help="checkpoints or shipped model names (default: the shipped model)")
    p.add_argument("--world", default=str(Path.home() / ".cache" / "i2vgan" / "demo-world"), help="where the demo's world is (rendered if missing)")
    p.add_argument("--out", default=None, help="write the scores as JSON here")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    root = make_world(a.world, seed=0, workers=2, **DEMO_WORLD)
    clips = irvi_clips(root)
    models = {c: load_trained(c, device="cpu") for c in a.checkpoints}
    first = next(iter(models.values()))
    untrained = I2VGAN(I2VGANConfig.from_dict({**first.config.to_dict(), "use_perceptual": False})).eval()
    lut, mean = paired_lut(root), mean_visible_frame(root)
    methods = {c: m.translate for c, m in models.items()}
    methods.update({"per-pixel colouriser (paired)": lambda ir: apply_lut(lut, ir), "mean visible training frame": lambda ir: np.broadcast_to(mean, ir.shape).copy(),
                    "untrained": untrained.translate, "infrared as RGB": lambda ir: ir})
    scores, seg = score_all(methods, clips, root)
    steps = {c: int(torch.load(m.checkpoint, map_location="cpu", weights_only=True).get("step", -1) or -1) for c, m in models.items()}
    print(f"{len(clips)} test clips of {root}; segmenter: {seg}")
    print(f"{'':40s} steps  PSNR    SSIM   pixel acc  class acc  mIoU   vehicle IoU")
    for k, s in scores.items():
        f = lambda v, w, d: f"{'—':>{w}s}" if v is None else f"{v:{w}.{d}f}"
        print(f"{k[-40:]:40s} {steps.get(k, ''):>5} {f(s['psnr'], 6, 2)} {f(s['ssim'], 6, 3)}  {s['pixel acc']:8.3f}  {s['class acc']:9.3f}  {s['mIoU']:5.3f}  {s['vehicle IoU']:8.3f}")
    res = {"world": str(root), "test_clips": [n for n, _, _ in clips], "segmenter": seg, "steps": steps, "scores": scores,
           "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "seconds": round(time.perf_counter() - t0, 1)}
    if a.out: Path(a.out).write_text(json.dumps(res, indent=1) + "\n"); print("wrote", a.out)
    return res


if __name__ == "__main__": main()
