"""What the committed Table 5 runs (results/table5-world) allow without re-running them: the semantic score of the
kept translations (seed 0, the first test clip, every row) and the baselines that need no seeds (the per-pixel
colouriser, the mean visible training frame) scored on all six test clips like the runs were.

    python scripts/table5_extras.py            # writes results/table5-world/extras.json

The segmenter is the one `world_segmenter` gives the demo's world (~/.cache/i2vgan/demo-world): the one shipped for
64-pixel traffic, which also fits the reproduction's world (same renderer, frame size and scene). The test clips are
rendered again with their labels (their layouts do not depend on n_train).
"""
import json, tempfile, time
from pathlib import Path
import numpy as np
import torch

from i2vgan.cli import DEMO_WORLD, mean_visible_frame, paired_lut
from i2vgan.data import irvi_labels
from i2vgan.metrics import confusion, evaluate, irvi_clips, segment, segmentation_scores, semantic_score, world_segmenter
from i2vgan.reproduce import REPRO_WORLD, ROWS, REFERENCES, machine_info
from i2vgan.world import apply_lut, make_world

RESULTS = Path(__file__).resolve().parent.parent / "results" / "table5-world"


def main():
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    root = make_world(Path.home() / ".cache" / "i2vgan" / "demo-world", seed=0, workers=2, **DEMO_WORLD)
    seg = world_segmenter(root)
    classes = json.loads((root / "labels.json").read_text())["classes"]
    test = make_world(Path(tempfile.mkdtemp()) / "world", size=64, seed=0, workers=2, **{**REPRO_WORLD, "n_train": 1})
    clips, (_, labels) = irvi_clips(test), irvi_labels(test)
    lut, mean = paired_lut(root), mean_visible_frame(root)
    score = lambda fr, lab: segmentation_scores(confusion(segment(seg, fr), lab, len(classes)), classes)
    name, ir, gt = clips[0]
    kept = {row: np.load(RESULTS / row / "seed0" / "translations.npz")[name] for row in (*REFERENCES, *ROWS)
            if (RESULTS / row / "seed0" / "translations.npz").is_file()}
    T = len(next(iter(kept.values())))
    lab = labels[name][:T]
    semantic = {row: score(fr, lab) for row, fr in kept.items()}
    semantic.update({"per-pixel colouriser": score(apply_lut(lut, ir[:T]), lab), "mean frame": score(np.broadcast_to(mean, ir[:T].shape).copy(), lab),
                     "ground truth": score(gt[:T], lab)})
    base = {"per-pixel colouriser": {n: apply_lut(lut, x) for n, x, _ in clips},
            "mean frame": {n: np.broadcast_to(mean, x.shape).copy() for n, x, _ in clips},
            "ground truth": {n: g for n, _, g in clips}}
    tables = {m: evaluate(o, clips, metrics=("psnr", "ssim", "e_warp", "tof"), labels=labels, segmenter=seg)["all"] for m, o in base.items()}
    out = {"kept_clip": name, "kept_frames": T, "semantic_kept_clip_seed0": semantic,
           "baselines_all_clips": {m: {k: r[k] for k in ("PSNR", "SSIM", "E_warp", "tOF", "pixel acc", "class acc", "mIoU")} for m, r in tables.items()},
           "test_clips": [n for n, _, _ in clips], "segmenter": {**{k: seg.record.get(k) for k in ("steps", "batch_size", "width", "frames", "train_seconds", "shipped")},
                                                         "upper_bound": semantic_score(None, test, seg, truth=True)},   # on these clips
           "machine": machine_info(), "date": time.strftime("%Y-%m-%d"), "seconds": round(time.perf_counter() - t0, 1)}
    (RESULTS / "extras.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=1)[:3000])


if __name__ == "__main__": main()
