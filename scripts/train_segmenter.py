"""Train the segmenter that ships with i2vgan: the semantic score's reader for the built-in world's 64-pixel traffic scenes.

    python scripts/train_segmenter.py            # writes i2vgan/models/segmenter/traffic-64.pt (under 1 MB)

`world_segmenter` trains a small segmenter for any labelled data set in seconds (`SEGMENTER`); its ground-truth
upper bound is low (it barely finds cars) and its weights differ with the thread count. This one is trained once,
for longer and wider (`SHIPPED_SEGMENTER`), on the visible training frames of a larger world (the shipped model's:
96 layouts, none of them a test layout), and ships with the package, so that every 64-pixel traffic world — the
demo's, the reproduction's, the shipped model's — is read by the same segmenter. It records what it learned from and
what it reads in that world's true test frames.
"""
import argparse, json, time
from pathlib import Path
import torch

from i2vgan.cli import DEMO_WORLD
from i2vgan.metrics import SHIPPED_SEGMENTER, SEGMENTER_DIR, _labelled_visible, semantic_score, train_segmenter
from i2vgan.reproduce import machine_info
from i2vgan.world import make_world

WORLD = {**DEMO_WORLD, "n_train": 96, "seed": 0}   # the shipped model's world: the demo's test clips, 96 training layouts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", default=str(Path.home() / ".cache" / "i2vgan" / "segmenter-world"), help="where the world is rendered (reused)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    root = make_world(a.world, workers=2, **WORLD)
    classes, frames, labels, _ = _labelled_visible(root)
    t0 = time.perf_counter()
    net = train_segmenter(frames, labels, len(classes), **SHIPPED_SEGMENTER)
    seconds = time.perf_counter() - t0
    world = json.loads((Path(root) / "world.json").read_text())
    record = dict(**SHIPPED_SEGMENTER, classes=classes, world=world, frames=len(frames), train_seconds=round(seconds, 1),
                  threads=a.threads, torch=str(torch.__version__), machine=machine_info()["cpu"], date=time.strftime("%Y-%m-%d"),
                  command="python scripts/train_segmenter.py")
    record["upper_bound"] = semantic_score(None, root, net, truth=True)
    SEGMENTER_DIR.mkdir(parents=True, exist_ok=True)
    path = SEGMENTER_DIR / f"traffic-{WORLD['size']}.pt"
    torch.save(dict(state=net.state_dict(), record=record), path)
    print(json.dumps({k: v for k, v in record.items() if k != "classes"}, indent=1))
    print("wrote", path, f"({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__": main()
