"""No code from a file ever runs: a pickle that would run code (here: create a marker file) is planted in every place
i2vgan reads a .pt or .pth — a checkpoint, a run to resume, an official release, VGG weights, a data folder's cached
segmenter, the shipped models and segmenters — and each is refused in one line, with the marker never made."""
import json
from pathlib import Path

import pytest
import torch

import i2vgan.metrics as metrics
import i2vgan.train as train
from i2vgan.data import write_video
from i2vgan.world import clip, make_world
from test_cli_errors import SMALL, refused

torch.set_num_threads(1)


class CodeRunner:
    "Unpickling this calls `open(marker, 'w')`: the marker file exists afterwards if, and only if, the pickle ran."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, "w"))


def plant(path:Path, marker:Path, shape:str="checkpoint") -> Path:
    "Write a code-running pickle at `path`, shaped like what the library expects there."
    evil = CodeRunner(marker)
    obj = {"checkpoint": {"format": "i2vgan-checkpoint/1", "step": 4, "config": {}, "model": evil},
           "state_dict": {"model.1.weight": torch.zeros(1), "payload": evil},
           "segmenter": {"state": evil, "record": {}}}[shape]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def no_code_ran(marker:Path, err:str):
    assert not marker.exists(), "the planted pickle ran"
    assert "refused" in err and "weights_only=False" not in err and "trust" not in err, err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A labelled 32-pixel world: no shipped segmenter fits it, so `evaluate` reads the data folder's own."
    return make_world(tmp_path_factory.mktemp("data") / "world", size=32, n_train=2, train_frames=5, n_test=1, test_frames=4,
                      kinds=("traffic",))


@pytest.fixture
def ir(tmp_path): return write_video(clip("traffic", 3, 32)[0], tmp_path / "ir.gif")


def test_checkpoint(capsys, tmp_path, ir):
    bad = plant(tmp_path / "step_0000004.pt", tmp_path / "marker")
    err = refused(capsys, "translate", "--checkpoint", bad, "--input", ir, "--output", tmp_path / "o.gif", "--device", "cpu",
                  says=("step_0000004.pt", "io.open", "could run code"))
    no_code_ran(tmp_path / "marker", err)


def test_resume(capsys, tmp_path, world):
    run = tmp_path / "run"
    plant(run / "checkpoints" / "step_0000004.pt", tmp_path / "marker")
    (run / "log.jsonl").write_text(json.dumps({"step": 4, "G": 1.0}) + "\n")
    err = refused(capsys, "train", "--data", world, "--steps", 6, "--out", run, "--resume", *SMALL,
                  says=("nothing to resume", "step_0000004.pt"))
    no_code_ran(tmp_path / "marker", err)


def test_official_release(capsys, tmp_path, ir):
    plant(tmp_path / "release" / "latest_net_G_B.pth", tmp_path / "marker", "state_dict")
    err = refused(capsys, "translate", "--official", tmp_path / "release", "--input", ir, "--output", tmp_path / "o.gif",
                  "--device", "cpu", says=("latest_net_G_B.pth",))
    no_code_ran(tmp_path / "marker", err)


def test_vgg_weights(capsys, tmp_path, world):
    bad = plant(tmp_path / "vgg19.pth", tmp_path / "marker", "state_dict")
    err = refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "run", *SMALL[:-6], "--vgg-weights", bad,
                  "--device", "cpu", says=("--vgg-weights", "vgg19.pth"))
    no_code_ran(tmp_path / "marker", err)
    assert not (tmp_path / "run").exists(), "refused before the run folder is made"


def test_segmenter_cached_in_a_data_folder(capsys, tmp_path, world):
    bad = plant(world / "segmenter.pt", tmp_path / "marker", "segmenter")
    try:
        err = refused(capsys, "evaluate", "--checkpoint", "traffic-tiny-64", "--data", world, "--device", "cpu",
                      says=("segmenter.pt", "delete it"))
        no_code_ran(tmp_path / "marker", err)
        assert bad.read_bytes() and bad.exists(), "the planted file is named, not silently replaced"
        with pytest.raises(ValueError, match="refused"): metrics.world_segmenter(world)
        assert not (tmp_path / "marker").exists()
    finally: bad.unlink()


def test_shipped_model(capsys, tmp_path, monkeypatch, ir):
    plant(tmp_path / "models" / "evil-model.pt", tmp_path / "marker")
    monkeypatch.setattr(train, "MODELS_DIR", tmp_path / "models")
    err = refused(capsys, "translate", "--checkpoint", "evil-model", "--input", ir, "--output", tmp_path / "o.gif", "--device", "cpu",
                  says=("evil-model.pt",))
    no_code_ran(tmp_path / "marker", err)


def test_shipped_segmenter(tmp_path, monkeypatch):
    plant(tmp_path / "segmenter" / "traffic-64.pt", tmp_path / "marker", "segmenter")
    monkeypatch.setattr(metrics, "SEGMENTER_DIR", tmp_path / "segmenter")
    root = tmp_path / "data"; root.mkdir()
    (root / "world.json").write_text(json.dumps({"size": 64, "version": 2, "kinds": ["traffic"]}))
    (root / "labels.json").write_text(json.dumps({"classes": ["road"]}))
    with pytest.raises(ValueError, match="traffic-64.pt: refused") as e: metrics.shipped_segmenter(root)
    no_code_ran(tmp_path / "marker", str(e.value))


def test_what_ships_loads_weights_only():
    "The package's own files hold tensors and plain values only (a record's torch version as a str)."
    files = sorted(train.MODELS_DIR.glob("*.pt")) + sorted(metrics.SEGMENTER_DIR.glob("*.pt"))
    assert files
    for p in files: torch.load(p, map_location="cpu", weights_only=True)       # no allow-listed class needed


def test_every_torch_load_in_the_library_is_weights_only():
    import re
    lib = Path(train.__file__).parent
    calls = [(p.name, m) for p in sorted(lib.glob("*.py")) for m in re.findall(r"torch\.load\([^\n]*", p.read_text())]
    assert calls
    for name, call in calls: assert "weights_only=True" in call, (name, call)
