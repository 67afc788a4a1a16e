"""What a notebook cannot show about training: the `i2vgan` command end to end, a process killed with SIGKILL
while it writes checkpoints, and unsafe or broken checkpoint files met from the command line."""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from i2vgan.data import write_video, read_frames
from i2vgan.world import clip, make_world
from i2vgan.train import load_checkpoint

I2VGAN = [str(Path(sys.executable).with_name("i2vgan"))]   # the console script, as a user runs it
SMALL = ["--scale", "tiny", "--set", "size=32", "--set", "unet_downs=5", "--vgg-weights", "random"]


def cli(*args, timeout=300):
    return subprocess.run(I2VGAN + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("data") / "world", size=32, n_train=2, train_frames=6, n_test=1, test_frames=4)


@pytest.fixture(scope="module")
def trained(root, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    r = cli("train", "--data", root, "--steps", 3, "--out", out, "--ckpt-every", 2, "--log-every", 1, *SMALL)
    assert r.returncode == 0, r.stderr
    return out


def test_train_writes_checkpoints_log_and_resumes(trained, root):
    ckpts = sorted((trained / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in ckpts] == ["step_0000002.pt", "step_0000003.pt"]
    rows = [json.loads(l) for l in (trained / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["G"]) for r in rows)
    r = cli("train", "--data", root, "--steps", 4, "--out", trained, "--resume", "--ckpt-every", 2, "--log-every", 1, *SMALL)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(sorted((trained / "checkpoints").glob("step_*.pt"))[-1])["step"] == 4


def test_translate_mp4_side_by_side_with_and_without_fusion(trained, tmp_path):
    ir, vis = clip("monitoring", n_frames=6, size=32, seed=3)
    src = write_video(ir, tmp_path / "ir.mp4", fps=8)
    ckpt = sorted((trained / "checkpoints").glob("step_*.pt"))[-1]
    for extra in ([], ["--fuse-predictor"]):
        out = tmp_path / f"out{len(extra)}.mp4"
        r = cli("translate", "--checkpoint", ckpt, "--input", src, "--output", out, "--side-by-side", *extra)
        assert r.returncode == 0, r.stderr
        frames = read_frames(out)
        assert len(frames) == 6 and frames[0].shape[1] == 2 * frames[0].shape[0]   # infrared | translation
    gif = tmp_path / "out.gif"
    r = cli("translate", "--checkpoint", ckpt, "--input", src, "--output", gif)
    assert r.returncode == 0 and iio.imread(gif).shape[0] == 6, r.stderr


def test_translate_by_shipped_model_name(trained, tmp_path, monkeypatch, capsys):
    "--checkpoint takes the short name of a model in i2vgan/models/ (a throwaway folder here); an unknown name lists the shipped ones."
    import i2vgan.cli as cli, i2vgan.train as train
    st = load_checkpoint(sorted((trained / "checkpoints").glob("step_*.pt"))[-1])
    models = tmp_path / "models"; models.mkdir()
    torch.save({"config": st["config"], "model": st["model"]}, models / "tiny-test.pt")     # the shipped format
    monkeypatch.setattr(train, "MODELS_DIR", models)
    assert cli.shipped_models() == ["tiny-test"]
    src = write_video(clip("traffic", n_frames=3, size=32)[0], tmp_path / "ir.gif")
    cli.main(["translate", "--checkpoint", "tiny-test", "--input", str(src), "--output", str(tmp_path / "o.gif"), "--device", "cpu"])
    assert read_frames(tmp_path / "o.gif").shape == (3, 32, 32, 3)
    with pytest.raises(SystemExit) as e:
        cli.main(["translate", "--checkpoint", "tiny-tset", "--input", str(src), "--output", str(tmp_path / "o2.gif")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "tiny-tset" in err and "shipped: tiny-test" in err and err.count("\n") == 1, err


def test_bad_paths_and_unsafe_checkpoints_get_one_line(tmp_path, trained):
    import argparse   # any importable object that is not plain data: weights_only loading must refuse it
    torch.save({"config": {}, "model": argparse.Namespace(x=1)}, tmp_path / "evil.pt")
    ir = write_video(clip("traffic", n_frames=3, size=32)[0], tmp_path / "ir.gif")
    for args, needle in [(("translate", "--checkpoint", tmp_path / "evil.pt", "--input", ir, "--output", tmp_path / "o.mp4"), "refused"),
                         (("translate", "--checkpoint", tmp_path / "none.pt", "--input", ir, "--output", tmp_path / "o.mp4"), "none.pt"),
                         (("translate", "--checkpoint", tmp_path / "evil.pt", "--input", tmp_path / "no.mp4", "--output", tmp_path / "o.mp4"), "no.mp4"),
                         (("train", "--data", tmp_path / "nodata", "--steps", 1), "nodata"),
                         (("train", "--steps", 1, "--set", "size"), "KEY=VALUE"),
                         (("train", "--steps", 1, "--set", "lamda=1"), "unknown config field")]:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_sigkill_while_checkpointing_leaves_a_loadable_checkpoint(root, tmp_path):
    out = tmp_path / "killed"
    cmd = I2VGAN + ["train", "--data", str(root), "--steps", "500", "--out", str(out), "--ckpt-every", "1",
                    "--log-every", "1", "--sample-every", "0", *SMALL]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and len(list((out / "checkpoints").glob("step_*.pt"))) < 2:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.37)  # land somewhere inside the next step or checkpoint write
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None: os.killpg(proc.pid, signal.SIGKILL)
    ckpts = sorted((out / "checkpoints").glob("step_*.pt"))
    assert ckpts, "no checkpoint survived"
    newest = load_checkpoint(ckpts[-1])          # the newest complete file loads
    step = newest["step"]
    r = cli("train", "--data", root, "--steps", step + 1, "--out", out, "--resume", "--ckpt-every", 1, *SMALL)
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(sorted((out / "checkpoints").glob("step_*.pt"))[-1])["step"] == step + 1


def test_fit_reads_losses_without_warnings(tmp_path):
    "Logging reads detached losses: no 'requires_grad ... to a scalar' warning at every log step."
    import warnings
    from i2vgan.core import I2VGAN
    from i2vgan.fast import random_batch, tiny_config
    from i2vgan.train import Trainer
    cfg = tiny_config("cycle-gan")
    data = [{k: v[0] for k, v in random_batch(cfg, seed=s).items()} for s in range(2)]
    t = Trainer(I2VGAN(cfg), data, tmp_path, device="cpu", progress=False, log_every=1, sample_every=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = t.fit(2)
    assert [r["step"] for r in rows] == [1, 2]
