"""The model that ships with i2vgan loads by its short name and reproduces what its card recorded."""
import json, subprocess, sys
from pathlib import Path
import pytest, torch

from i2vgan.metrics import psnr, ssim
from i2vgan.train import load_trained, shipped_models
from i2vgan.world import make_layout, render_clip

MODELS = Path(__file__).resolve().parent.parent / "i2vgan" / "models"
NAME = "traffic-tiny-64"


@pytest.fixture(scope="module")
def card():
    return json.loads((MODELS / f"{NAME}.json").read_text())


def test_shipped_model_is_listed_and_small(card):
    assert NAME in shipped_models()
    assert (MODELS / card["file"]).stat().st_size < 10e6        # ships in the repository: at most 10 MB
    for key in ("command", "steps", "train_seconds", "machine", "date", "metrics", "metrics_per_clip", "vgg_weights"):
        assert key in card, key


def test_shipped_model_reproduces_its_recorded_metric(card):
    "Render the card's first test clip again, translate it with the shipped model: the recorded PSNR/SSIM come back."
    torch.set_num_threads(1)
    model = load_trained(NAME, device="cpu")
    clip_name = card["test_clips"][0]                         # "[<scene>/]<kind>_<layout seed>", as make_world names it
    kind, seed = clip_name.split("/")[-1].rsplit("_", 1)
    seed = int(seed)
    n, size = card["world"]["test_frames"], card["world"]["size"]
    c = render_clip(make_layout(kind, seed, n), n, size)
    out = model.translate(c["ir"])
    recorded = card["metrics_per_clip"]["per frame"][clip_name]
    assert abs(psnr(out, c["vis"]) - recorded["psnr"]) < 0.01
    assert abs(ssim(out, c["vis"]) - recorded["ssim"]) < 1e-3
    assert recorded["psnr"] > psnr(c["ir"], c["vis"]) + 4          # and it is a model that learned something


def test_translate_accepts_the_short_name(tmp_path):
    "`i2vgan translate --checkpoint world-tiny-64` runs on an infrared clip."
    from i2vgan.data import write_video
    c = render_clip(make_layout("monitoring", 40_001, 4), 4, 64)
    write_video(c["ir"], tmp_path / "ir.gif")
    r = subprocess.run([str(Path(sys.executable).with_name("i2vgan")), "translate", "--checkpoint", NAME, "--input", str(tmp_path / "ir.gif"),
                        "--output", str(tmp_path / "out.gif")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out.gif").exists()


def test_unknown_short_name_lists_the_shipped_ones():
    with pytest.raises((FileNotFoundError, ValueError)) as e: load_trained("no-such-model")
    assert NAME in str(e.value)


def test_recipe_curve_thins_the_run_log(tmp_path):
    "train_recipe_model.py copies every LOG_EVERY-th row of the run's log beside the curve, once per step (notebook 04 plots it)."
    import importlib.util
    spec = importlib.util.spec_from_file_location("trm", Path(__file__).resolve().parent.parent / "scripts" / "train_recipe_model.py")
    trm = importlib.util.module_from_spec(spec); spec.loader.exec_module(trm)
    rows = [{"step": s, "G": float(s)} for s in range(50, 1001, 50)]
    rows += [{"step": 400, "G": -1.0}, {"step": 450, "G": -2.0}]               # a resumed sitting logs steps 400-450 again
    (tmp_path / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")
    thin = trm.thin_log(tmp_path, 200)
    assert [r["step"] for r in thin] == [200, 400, 600, 800, 1000]
    assert [r["G"] for r in thin] == [200.0, -1.0, 600.0, 800.0, 1000.0]      # the later row of a step wins
    assert trm.thin_log(tmp_path / "missing", 200) == []
