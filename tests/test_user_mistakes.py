"""Every mistake named in the user's terms: a full disk, a torn log, a device the machine lacks, options out of range,
config values outside their meaning, folders where files are expected and the other way round, names found twice —
each one line (or, where the work can go on, a warning and the work), and the library's API refusing the same by name."""
import argparse, errno, json, os, shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import i2vgan.fast as fast
import i2vgan.train as train
from i2vgan import cli
from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.data import read_frames, write_video
from i2vgan.train import Trainer, read_log
from i2vgan.world import clip
from test_cli_errors import SMALL, ckpt, finished, refused, run, run_dir, world   # noqa: F401 (fixtures)

torch.set_num_threads(1)


# ---- training runs: disk, log, partial files, steps -------------------------------------------------------------------

def test_full_disk_while_checkpointing(capsys, world, run_dir, monkeypatch):
    real = torch.save
    def full(obj, f, *a, **k):
        if hasattr(f, "write"): f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(torch, "save", full)
    c, _, err = run(capsys, "train", "--data", world, "--steps", 6, "--out", run_dir, "--resume", "--ckpt-every", 2, *SMALL)
    monkeypatch.setattr(torch, "save", real)
    last = err.strip().splitlines()[-1]                       # after the progress bar: one line
    assert c == 2 and "Traceback" not in err and last.startswith("i2vgan train: error: "), err
    for s in ("no space left", "MB free", "needs about", "MB)", "newest intact checkpoint is", "step_0000004.pt", "--resume"): assert s in last, (s, last)
    assert not list((run_dir / "checkpoints").glob("*.tmp")) and not list((run_dir / "checkpoints").glob(".*")), err


def test_partial_checkpoint_of_a_killed_run_is_removed_at_the_next_start(capsys, world, run_dir):
    tmp = run_dir / "checkpoints" / ".step_0000006.pt.4242.tmp"; tmp.write_bytes(b"PK\x03\x04 cut short by SIGKILL")
    c, out, err = run(capsys, "train", "--data", world, "--steps", 6, "--out", run_dir, "--resume", "--ckpt-every", 2, *SMALL)
    assert c == 0, err
    assert not tmp.exists() and "unfinished" in out


def test_torn_log_on_resume_is_set_aside(capsys, world, run_dir):
    log = run_dir / "log.jsonl"
    good = log.read_text().splitlines()
    log.write_text("\n".join(good) + '\n{"step": 5, "G": 1.2\n\x00\x00garbled\n')
    c, out, err = run(capsys, "train", "--data", world, "--steps", 6, "--out", run_dir, "--resume", "--ckpt-every", 2, *SMALL)
    assert c == 0, err
    assert f"line {len(good) + 1}" in out and "log.jsonl" in out and "set aside" in out, out
    assert '"step": 5' in (run_dir / "log.jsonl.bad").read_text()
    assert [r["step"] for r in read_log(run_dir)][-1] == 6


def test_read_log_names_a_torn_line(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"step": 1}\n{"step": 2, "G"\n')
    with pytest.raises(ValueError, match=r"log.jsonl line 2: not a log row"): read_log(tmp_path)


def test_resume_to_fewer_steps_than_the_run_has(capsys, world, run_dir):
    err = refused(capsys, "train", "--data", world, "--steps", 2, "--out", run_dir, "--resume", *SMALL,
                  says=("--steps 2", "already at step 4", "above 4"))
    assert "trained" not in err


# ---- options checked before any work ------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,says", [(["--log-every", "0"], "--log-every 0"), (["--ckpt-every", "-1"], "--ckpt-every -1"),
                                        (["--sample-every", "-2"], "--sample-every -2")])
def test_step_intervals_are_checked_up_front(capsys, world, tmp_path, flags, says):
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, *flags, says=(says, "≥"))
    assert not (tmp_path / "r").exists()


def test_demo_threads_zero(capsys, tmp_path, monkeypatch):
    def no_demo(*a, **k): raise AssertionError("the demo started")
    monkeypatch.setattr(cli, "run_demo", no_demo)
    refused(capsys, "demo", "--out", tmp_path / "d", "--threads", "0", says=("--threads 0", "≥ 1"))


@pytest.mark.parametrize("device,says", [("cuda:7", "no such device"), ("gpu", "not a device name"), ("mps", "no such device")])
def test_unavailable_device_names_those_there_are(capsys, world, tmp_path, device, says):
    if device == "mps" and "mps" in cli.devices(): pytest.skip("this machine has mps")
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, "--device", device,
            says=(f"--device {device}", says, "cpu"))


def test_set_name_points_at_preset(capsys, world, tmp_path):
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, "--set", "name=cycle-gan",
            says=("--set name=cycle-gan", "--preset"))


@pytest.mark.parametrize("pair,says", [("lambda_cyc=-1", "lambda_cyc=-1.0: expected a finite weight ≥ 0"),
                                       ("lambda_ins=nan", "lambda_ins=nan"), ("lr=inf", "lr=inf: expected a finite number > 0"),
                                       ("beta1=1.5", "beta1=1.5"), ("tau=-0.1", "tau=-0.1"), ("gan_mode=wgan", "gan_mode='wgan'"),
                                       ("n_layers_d=4", "n_layers_d=4: a 32-pixel frame is too small"),
                                       ("n_layers_d=9", "at most 3 layers fit")])
def test_config_values_outside_their_meaning(capsys, world, tmp_path, pair, says):
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, "--set", pair, says=(says,))
    assert not (tmp_path / "r").exists()


def test_size_too_large_for_memory(capsys, world, tmp_path, monkeypatch):
    def no_training(*a, **k): raise AssertionError("training started")
    monkeypatch.setattr(fast, "make_trainer", no_training)
    monkeypatch.setattr(cli, "free_memory", lambda device=None: 2 * 10 ** 9, raising=False)
    err = refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, "--set", "size=4096",
                  says=("--set size=4096", "needs about", "GB", "2.0 GB free", "fits"))
    fits = int(err.split("about size=")[1].split()[0])
    assert 32 <= fits < 4096 and fits % 32 == 0


def test_step_memory_grows_with_area():
    cfg = I2VGANConfig.preset("i2vgan", "tiny", ngf=8, npf=8, ndf=8, vgg_weights="random")
    small, big = cli.step_memory(cfg), cli.step_memory(I2VGANConfig.from_dict({**cfg.to_dict(), "size": 64}))
    assert 3 < big / small < 4.2, (small, big)       # activations ×4, weights and Adam's state the same


@pytest.mark.parametrize("content", ["list", "tensor", "wrong keys"])
def test_vgg_weights_that_are_not_a_state_dict(capsys, world, tmp_path, content):
    p = tmp_path / "vgg.pth"
    torch.save({"list": [1, 2, 3], "tensor": torch.zeros(3), "wrong keys": {"fc.weight": torch.zeros(2)}}[content], p)
    err = refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", *SMALL, "--vgg-weights", p,
                  says=("--vgg-weights", "vgg.pth", "VGG-19 state dict"))
    assert "weights_only" not in err and not (tmp_path / "r").exists()


def test_out_that_is_a_file_or_a_symlink_loop(capsys, world, tmp_path):
    f = tmp_path / "notes.txt"; f.write_text("mine")
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", f, *SMALL, says=("--out", "notes.txt", "is a file"))
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", f / "run", *SMALL, says=("notes.txt is a file",))
    refused(capsys, "demo", "--out", f, says=("--out", "is a file"))
    loop = tmp_path / "loop"; loop.symlink_to(loop)
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", loop, *SMALL, says=("--out", "loop", "symbolic link", "leads nowhere"))
    refused(capsys, "evaluate", "--checkpoint", "x.pt", "--out", tmp_path / "loop", says=("--out", "symbolic link"))
    refused(capsys, "bench", "all", "--out", f, says=("--out", "is a file"))
    assert f.read_text() == "mine"


# ---- naming a model -----------------------------------------------------------------------------------------------------

def test_checkpoint_given_a_run_folder_or_a_model_card(capsys, finished, tmp_path):
    src = write_video(clip("traffic", 3, 32)[0], tmp_path / "ir.gif")
    args = ("--input", src, "--output", tmp_path / "o.gif", "--device", "cpu")
    refused(capsys, "translate", "--checkpoint", finished, *args, says=("is a run folder", "its newest checkpoint is", "step_0000004.pt"))
    refused(capsys, "translate", "--checkpoint", tmp_path, *args, says=("is a folder", "expected a checkpoint file"))
    card = tmp_path / "m.json"; card.write_text("{}"); shutil.copy(ckpt(finished), tmp_path / "m.pt")
    refused(capsys, "translate", "--checkpoint", card, *args, says=("m.json", "model card", "m.pt"))


def test_a_name_found_here_and_among_the_shipped_models(capsys, finished, tmp_path, monkeypatch):
    models = tmp_path / "models"; models.mkdir(); shutil.copy(ckpt(finished), models / "tiny-test.pt")
    monkeypatch.setattr(train, "MODELS_DIR", models)
    monkeypatch.chdir(tmp_path)
    Path("tiny-test").mkdir()                                   # a folder named like the shipped model
    src = write_video(clip("traffic", 3, 32)[0], tmp_path / "ir.gif")
    args = ("--input", src, "--device", "cpu")
    refused(capsys, "translate", "--checkpoint", "tiny-test", *args, "--output", "o.gif", says=("./tiny-test", "shipped:tiny-test"))
    c, _, err = run(capsys, "translate", "--checkpoint", "shipped:tiny-test", *args, "--output", "o.gif")
    assert c == 0 and read_frames("o.gif").shape == (3, 32, 32, 3), err
    refused(capsys, "translate", "--checkpoint", "./tiny-test", *args, "--output", "o2.gif", says=("tiny-test", "is a folder"))
    shutil.copy(ckpt(finished), "tiny-test.pt")                 # a file of that name: an explicit path wins
    c, _, err = run(capsys, "translate", "--checkpoint", "./tiny-test.pt", *args, "--output", "o3.gif")
    assert c == 0, err
    refused(capsys, "translate", "--checkpoint", "shipped:nope", *args, "--output", "o4.gif", says=("shipped:nope", "shipped: tiny-test"))


def test_official_with_a_damaged_predictor_translates_without_it(capsys, tmp_path):
    m = I2VGAN(I2VGANConfig.preset("i2vgan", "tiny", vgg_weights="random", use_perceptual=False))
    for theirs, ours in (("G_B", "G_Y"), ("G_A", "G_X"), ("P_A", "P_X"), ("P_B", "P_Y")):
        torch.save(getattr(m, ours).state_dict(), tmp_path / f"latest_net_{theirs}.pth")
    sd = torch.load(tmp_path / "latest_net_P_B.pth", weights_only=True)
    sd["model.model.0.weight"] = sd["model.model.0.weight"][:12]           # damaged: 12 filters where the net has 16
    torch.save(sd, tmp_path / "latest_net_P_B.pth")
    src = write_video(clip("traffic", 3, 32)[0], tmp_path / "ir.gif")
    c, out, err = run(capsys, "translate", "--official", tmp_path, "--input", src, "--output", tmp_path / "o.gif", "--device", "cpu")
    assert c == 0, err
    assert err.count("\n") == 1 and "warning" in err and "latest_net_P_B.pth" in err and "predictor is not usable" in err, err
    assert read_frames(tmp_path / "o.gif").shape == (3, 32, 32, 3)
    refused(capsys, "translate", "--official", tmp_path, "--fuse", "--input", src, "--output", tmp_path / "o2.gif", "--device", "cpu",
            says=("latest_net_P_B.pth",))


# ---- the built-in world, the demo, bench ---------------------------------------------------------------------------------

def test_home_that_cannot_hold_the_world(capsys, tmp_path, monkeypatch):
    home = tmp_path / "home"; home.write_text("a file, not a folder")
    monkeypatch.setenv("HOME", str(home)); monkeypatch.delenv("I2VGAN_CACHE", raising=False)
    refused(capsys, "train", "--data", "world", "--steps", 1, "--out", tmp_path / "r", *SMALL,
            says=("--data world", str(home / ".cache" / "i2vgan"), "I2VGAN_CACHE", "--data"))


def test_world_cache_follows_i2vgan_cache(tmp_path, monkeypatch):
    import i2vgan.world as world
    seen = {}
    monkeypatch.setattr(world, "make_world", lambda root, **kw: seen.setdefault("root", Path(root)))
    monkeypatch.setenv("I2VGAN_CACHE", str(tmp_path / "cache"))
    assert cli.world_root(size=32) == tmp_path / "cache" / "world-32"


def test_demo_in_a_folder_made_with_another_seed(capsys, tmp_path):
    (tmp_path / "d" / "world" / "triplet").mkdir(parents=True)
    (tmp_path / "d" / "world" / "world.json").write_text(json.dumps({**cli.DEMO_WORLD, "kinds": ["traffic"], "seed": 1, "version": 2}))
    err = refused(capsys, "demo", "--out", tmp_path / "d", "--seed", 0, "--steps", 1, says=("--seed 1", "--out"))
    assert "overwrite=True" not in err
    opts = {o for a in cli.parser()._subparsers._group_actions[0].choices["demo"]._actions for o in a.option_strings}
    assert {"--seed", "--out"} <= opts                       # the options named are real


def test_bench_metrics_size_below_the_ssim_window(capsys):
    from i2vgan.metrics import SSIM_MIN_SIZE
    refused(capsys, "bench", "metrics", "--size", 3, "--frames", 2, says=("--size 3", f"≥ {SSIM_MIN_SIZE}"))
    from i2vgan.metrics import ssim
    x = np.zeros((1, SSIM_MIN_SIZE, SSIM_MIN_SIZE, 3), np.uint8)
    assert ssim(x, x) == pytest.approx(1.0)                 # the smallest size SSIM allows works
    with pytest.raises(ValueError): ssim(x[:, :-1, :-1], x[:, :-1, :-1])


# ---- --help -------------------------------------------------------------------------------------------------------------

def test_every_option_states_its_default():
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, p in sub.choices.items():
        fmt = p._get_formatter()
        for act in p._actions:
            if (not act.option_strings or act.required or isinstance(act, (argparse._HelpAction, argparse._StoreTrueAction))): continue
            if "default" not in fmt._expand_help(act): missing.append(f"{name} {act.option_strings[0]}")
        p.format_help()                                     # every help string formats
    assert not missing, missing


# ---- the library's API --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(world):
    from i2vgan.data import irvi_dataset
    cfg = I2VGANConfig.preset("i2vgan", "tiny", ngf=8, npf=8, ndf=8, vgg_weights="random")
    return I2VGAN(cfg), irvi_dataset(world, "train", size=cfg.size)


@pytest.mark.parametrize("steps", [0, -5, 2.5, True, "10"])
def test_fit_refuses_steps_that_are_not_a_positive_whole_number(tiny, tmp_path, steps):
    t = Trainer(*tiny, tmp_path / "r", device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"steps=.*: expected a whole number ≥ 1"): t.fit(steps)
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize("kw,name", [(dict(batch_size=0), "batch_size=0"), (dict(log_every=0), "log_every=0"),
                                     (dict(ckpt_every=-1), "ckpt_every=-1"), (dict(sample_every=-1), "sample_every=-1"),
                                     (dict(keep=0), "keep=0"), (dict(batch_size=1.5), "batch_size=1.5")])
def test_trainer_arguments_are_refused_by_name(tiny, tmp_path, kw, name):
    with pytest.raises(ValueError, match=name): Trainer(*tiny, tmp_path / "r", device="cpu", **kw)


def test_config_wrong_types_name_the_field_and_its_type():
    with pytest.raises(ValueError, match=r"lr='0.1': expected a value of type float, got str"): I2VGANConfig(lr="0.1")
    import dataclasses
    for f in dataclasses.fields(I2VGANConfig):           # every field, those added later too
        with pytest.raises(ValueError, match=rf"^{f.name}=.*expected a value of type \w+, got object"):
            I2VGANConfig(**{f.name: object()})
    c = I2VGANConfig(lr=1, vgg_weights=Path("x.pth"), vgg_layers=["relu1_1"], size=np.int64(256))
    assert (type(c.lr), c.vgg_weights, c.vgg_layers, type(c.size)) == (float, "x.pth", ("relu1_1",), int)
