"""Nothing lost: a user's mistakes met through `i2vgan`, in process. Inputs and earlier runs survive every one of them,
each error is one line on stderr (no traceback), and every option given is used or refused."""
import fcntl, json, os, shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from i2vgan import cli
from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.data import write_video, read_frames, write_frames
from i2vgan.train import Trainer, load_checkpoint, read_log
from i2vgan.world import clip, make_world

torch.set_num_threads(1)
SMALL = ["--set", "ngf=8", "--set", "npf=8", "--set", "ndf=8", "--vgg-weights", "random", "--device", "cpu",
         "--sample-every", "0", "--log-every", "1"]


def run(capsys, *args):
    "Run `i2vgan args` in this process: (exit status, stdout, stderr)."
    capsys.readouterr()
    try: cli.main([str(a) for a in args]); code = 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args, says=(), code=2) -> str:
    "The command exits with `code` and exactly one line on stderr that holds every string of `says`."
    c, out, err = run(capsys, *args)
    assert c == code and err.count("\n") == 1 and "Traceback" not in err, (c, err)
    for s in says: assert s in err, (s, err)
    return err


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return make_world(tmp_path_factory.mktemp("data") / "world", size=32, n_train=2, train_frames=5, n_test=1, test_frames=4,
                      kinds=("traffic",))


def train(capsys, world, out, steps, *extra):
    return run(capsys, "train", "--data", world, "--steps", steps, "--out", out, "--ckpt-every", 2, *SMALL, *extra)


@pytest.fixture(scope="module")
def finished(world, tmp_path_factory):
    "A finished 4-step run (checkpoints at steps 2 and 4), copied fresh for each test that changes it."
    out = tmp_path_factory.mktemp("finished") / "run"
    cli.main([str(a) for a in ("train", "--data", world, "--steps", 4, "--out", out, "--ckpt-every", 2, *SMALL)])
    return out


@pytest.fixture
def run_dir(finished, tmp_path):
    shutil.copytree(finished, tmp_path / "run"); return tmp_path / "run"


def ckpt(run_dir) -> Path: return sorted((run_dir / "checkpoints").glob("step_*.pt"))[-1]


def snapshot(folder) -> dict: return {p.relative_to(folder): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file() and p.name != ".lock"}


# ---- data destroyed ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_translate_never_writes_over_its_input(capsys, finished, tmp_path, ext):
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / f"clip{ext}")
    before = src.read_bytes()
    for flags in ([], ["--overwrite"]):
        refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", src, *flags,
                says=("is the --input file",))
    refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", tmp_path / "." / src.name,
            says=("is the --input file",))
    assert src.read_bytes() == before


def test_translate_keeps_an_existing_output_unless_overwrite(capsys, finished, tmp_path):
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / "clip.gif")
    out = tmp_path / "out.gif"; out.write_bytes(b"mine")
    refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", out, says=("exists", "--overwrite"))
    assert out.read_bytes() == b"mine"
    assert run(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", out, "--overwrite")[0] == 0
    assert read_frames(out).shape == (4, 32, 32, 3)


def test_new_run_into_a_finished_run_is_refused(capsys, world, run_dir):
    before = snapshot(run_dir)
    refused(capsys, "train", "--data", world, "--steps", 4, "--out", run_dir, *SMALL, says=("--resume", "--overwrite", "earlier run"))
    assert snapshot(run_dir) == before
    c, out, _ = train(capsys, world, run_dir, 2, "--overwrite")
    assert c == 0 and [r["step"] for r in read_log(run_dir)] == [1, 2]
    assert [p.name for p in (run_dir / "checkpoints").glob("*.pt")] == ["step_0000002.pt"] and "step_0000002.pt" in out


def test_two_trainers_in_one_folder(capsys, world, tmp_path):
    out = tmp_path / "busy"; out.mkdir()
    with open(out / ".lock", "a+") as f:                      # another process's trainer holds the folder
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); f.write("pid 4242\n"); f.flush()
        refused(capsys, "train", "--data", world, "--steps", 2, "--out", out, *SMALL, says=("another training run", "pid 4242"))
    assert not (out / "checkpoints").exists() and not (out / "log.jsonl").exists()
    assert train(capsys, world, out, 2)[0] == 0                # free again


# ---- tracebacks instead of a line ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [5_000, 30_000, 60_000])
def test_truncated_checkpoint_to_translate(capsys, finished, tmp_path, size):
    bad = tmp_path / "cut.pt"; bad.write_bytes(ckpt(finished).read_bytes()[:size])
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / "clip.gif")
    refused(capsys, "translate", "--checkpoint", bad, "--input", src, "--output", tmp_path / "o.gif", says=("cut.pt", "not readable", "truncated"))


def test_resume_past_a_truncated_newest_checkpoint(capsys, world, run_dir):
    newest = ckpt(run_dir); newest.write_bytes(newest.read_bytes()[:30_000])
    c, out, err = train(capsys, world, run_dir, 5, "--resume")
    assert c == 0, err
    assert "step_0000004.pt does not load" in out and "resuming from step_0000002.pt" in out
    assert [r["step"] for r in read_log(run_dir)] == [1, 2, 3, 4, 5]
    assert load_checkpoint(ckpt(run_dir))["step"] == 5


@pytest.mark.parametrize("case", ["folder", "readonly", "oserror", "errno-only"])
def test_unwritable_outputs(capsys, finished, tmp_path, monkeypatch, case):
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / "clip.gif")
    args = ["translate", "--checkpoint", ckpt(finished), "--input", src, "--output"]
    if case == "folder":
        (tmp_path / "out.mp4").mkdir()
        refused(capsys, *args, tmp_path / "out.mp4", says=("is a folder",))
    elif case == "readonly":                                  # (the tests may run as root, who may write anywhere)
        monkeypatch.setattr(cli.os, "access", lambda p, mode: False)
        refused(capsys, *args, tmp_path / "out.gif", says=("is not writable",))
    else:                                                     # what the OS says, as one line with its reason
        exc = PermissionError(13, "Permission denied", str(tmp_path / "o.gif")) if case == "oserror" else FileNotFoundError(2, "No such file or directory")
        def fail(*a, **k): raise exc
        monkeypatch.setattr("i2vgan.data.write_video", fail)
        err = refused(capsys, *args, tmp_path / "o.gif", says=("Permission denied",) if case == "oserror" else ("No such file or directory",))
        assert "error: 2" not in err and "[Errno" not in err


def test_evaluate_out_in_a_missing_folder(capsys, finished, world, tmp_path):
    refused(capsys, "evaluate", "--checkpoint", ckpt(finished), "--data", world, "--out", tmp_path / "no" / "t.csv", "--device", "cpu",
            says=("does not exist", str(tmp_path / "no")))


def test_evaluate_adds_the_semantic_columns_where_labels_lie(capsys, finished, world, tmp_path):
    "On a labelled data set (the world writes testL/, trainL/, labels.json) `evaluate` trains and caches the segmenter and reports its columns."
    c, out, err = run(capsys, "evaluate", "--checkpoint", ckpt(finished), "--data", world, "--out", tmp_path / "t.json", "--device", "cpu")
    assert c == 0, err
    assert all(k in out for k in ("pixel acc", "class acc", "mIoU")), out
    table = json.loads((tmp_path / "t.json").read_text())
    assert {"pixel acc", "class acc", "mIoU"} <= set(table["columns"]), table["columns"]
    rows = table["rows"]
    assert all(r.get("mIoU") is not None and 0 <= r["mIoU"] <= 1 for r in rows), rows
    assert (Path(world) / "segmenter.pt").is_file()                # trained once, cached beside the data


def test_tiny_frames(capsys, finished, tmp_path):
    src = write_video(np.zeros((3, 2, 2, 3), np.uint8), tmp_path / "tiny.gif")
    refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", tmp_path / "o.gif", says=("2×2", "8×8"))


@pytest.mark.parametrize("pair,says", [("size=0", "size=0: expected a whole number ≥ 8"), ("ngf=0", "ngf=0: expected a whole number ≥ 1"),
                                       ("size=33", "size=33: expected a multiple of 4"), ("size=-32", "size=-32: expected a whole number ≥ 8"),
                                       ("size=48", "size=48: the predictor's U-Net")])
def test_bad_config_values_are_refused_when_made(capsys, world, tmp_path, pair, says):
    refused(capsys, "train", "--data", world, "--steps", 2, "--out", tmp_path / "r", "--set", pair, "--device", "cpu", says=(says,))
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_ctrl_c_then_resume_gives_the_uninterrupted_run(capsys, world, tmp_path, monkeypatch):
    c, _, _ = train(capsys, world, tmp_path / "straight", 6)
    assert c == 0
    values = Trainer.loss_values
    def interrupt_at_5(self, terms):
        if self.step == 5: raise KeyboardInterrupt
        return values(self, terms)
    monkeypatch.setattr(Trainer, "loss_values", interrupt_at_5)
    c, _, err = train(capsys, world, tmp_path / "cut", 6)
    assert c == 130 and "Traceback" not in err and err.strip().splitlines()[-1].endswith("continue with --resume"), err
    assert [r["step"] for r in read_log(tmp_path / "cut")] == [1, 2, 3, 4] and ckpt(tmp_path / "cut").name == "step_0000004.pt"
    monkeypatch.setattr(Trainer, "loss_values", values)
    assert train(capsys, world, tmp_path / "cut", 6, "--resume")[0] == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time"} for r in rows]
    assert strip(read_log(tmp_path / "cut")) == strip(read_log(tmp_path / "straight"))
    for k, v in load_checkpoint(ckpt(tmp_path / "cut"))["model"].items():
        assert torch.equal(v, load_checkpoint(ckpt(tmp_path / "straight"))["model"][k]), k


@pytest.mark.parametrize("content", [b"\x00\x01garbage" * 500, b"hello\n"])
def test_broken_mp4_input_is_one_line(capsys, finished, tmp_path, content):
    bad = tmp_path / "bad.mp4"; bad.write_bytes(content)
    refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", bad, "--output", tmp_path / "o.gif", says=("bad.mp4", "cannot open video"))


# ---- runs that did something else than asked -----------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".gif", ".mp4"])
def test_odd_frame_sizes_keep_their_size(capsys, finished, tmp_path, ext):
    ir = np.asarray(clip("traffic", 4, 32)[0])[:, :14, :25]
    src = write_video(ir, tmp_path / f"odd{ext}")
    out = tmp_path / f"out{ext}"
    assert run(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", out)[0] == 0
    assert read_frames(out).shape == (4, 14, 25, 3)
    sbs = tmp_path / f"sbs{ext}"
    c, _, err = run(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", sbs, "--side-by-side", "--ground-truth", src)
    assert c == 0, err
    assert read_frames(sbs).shape == (4, 14, 75, 3)


def test_translate_keeps_any_size_in_the_library(finished):
    from i2vgan.train import load_trained
    m = load_trained(ckpt(finished), "cpu")
    x = np.asarray(clip("traffic", 5, 32)[0])
    for h, w in ((30, 30), (14, 25), (8, 9)):
        for fuse in (False, True):
            assert m.translate(x[:, :h, :w], fuse_predictor=fuse).shape == (5, h, w, 3)
    full = m.translate(x)                                    # a size the networks take: not padded, not changed
    assert np.array_equal(full, m.translate(x, batch_size=2))


def test_resume_after_checkpoints_were_deleted(capsys, world, run_dir):
    shutil.rmtree(run_dir / "checkpoints")
    before = snapshot(run_dir)
    refused(capsys, "train", "--data", world, "--steps", 6, "--out", run_dir, "--resume", *SMALL, says=("nothing to resume", "--overwrite"))
    assert snapshot(run_dir) == before


def test_resume_into_an_empty_folder_says_it_starts_at_zero(capsys, world, tmp_path):
    c, out, _ = train(capsys, world, tmp_path / "new", 2, "--resume")
    assert c == 0 and "starting at step 0" in out


@pytest.mark.parametrize("flags,says", [(["--preset", "cycle-gan"], "--preset cycle-gan: the run in"),
                                        (["--seed", "3"], "--seed 3: the run in"),
                                        (["--set", "ndf=16"], "--set ndf=16: the run in")])
def test_resume_with_other_options_is_refused(capsys, world, run_dir, flags, says):
    before = snapshot(run_dir)
    refused(capsys, "train", "--data", world, "--steps", 6, "--out", run_dir, "--resume", "--device", "cpu", *flags, says=(says,))
    assert snapshot(run_dir) == before


def test_resume_with_the_same_options_or_none(capsys, world, run_dir):
    c, _, err = run(capsys, "train", "--data", world, "--steps", 5, "--out", run_dir, "--resume", "--device", "cpu", "--ckpt-every", 2,
                    "--preset", "i2vgan", "--sample-every", "0")
    assert c == 0, err
    assert load_checkpoint(ckpt(run_dir))["config"]["ngf"] == 8            # the run's config, not the default


def test_ground_truth_needs_side_by_side(capsys, finished, tmp_path):
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / "clip.gif")
    refused(capsys, "translate", "--checkpoint", ckpt(finished), "--input", src, "--output", tmp_path / "o.gif", "--ground-truth", src,
            says=("--ground-truth", "--side-by-side"))
    assert not (tmp_path / "o.gif").exists()


def test_corrupt_predictor_is_named(tmp_path):
    m = I2VGAN(I2VGANConfig.preset("i2vgan", "tiny", vgg_weights="random", use_perceptual=False))
    for theirs, ours in (("G_B", "G_Y"), ("G_A", "G_X"), ("P_A", "P_X"), ("P_B", "P_Y")):
        torch.save(getattr(m, ours).state_dict(), tmp_path / f"latest_net_{theirs}.pth")
    sd = torch.load(tmp_path / "latest_net_P_B.pth")
    sd["model.model.0.weight"] = sd["model.model.0.weight"][:12]           # damaged: 12 filters where the net has 16
    torch.save(sd, tmp_path / "latest_net_P_B.pth")
    with pytest.raises(ValueError, match="latest_net_P_B.pth"): I2VGAN.load_official(tmp_path, require=("G_B", "P_B"))


def test_ambiguous_frames_translate_as_frames(capsys, finished, tmp_path):
    frames = np.asarray(clip("traffic", 3, 64)[0])[:, :20, :45]             # 45×20: three 15×20 frames, or one wide frame?
    write_frames(frames, tmp_path / "wide")
    c, _, err = run(capsys, "translate", "--checkpoint", ckpt(finished), "--input", tmp_path / "wide", "--output", tmp_path / "o.gif")
    assert c == 0, err
    assert read_frames(tmp_path / "o.gif").shape == (3, 20, 45, 3)


def test_ambiguous_training_data_names_the_option(capsys, tmp_path):
    for d in ("trainA", "trainB"):
        write_frames(np.asarray(clip("traffic", 3, 64)[0])[:, :20, :45], tmp_path / "data" / d)
    refused(capsys, "train", "--data", tmp_path / "data", "--steps", 1, "--out", tmp_path / "r", *SMALL,
            says=("--layout strips", "--layout frames"))


def test_unexpected_errors_are_one_line_too(capsys, monkeypatch, tmp_path):
    def boom(a): raise RuntimeError("something inside\nwith a second line")
    monkeypatch.setattr(cli, "load_model", boom)
    src = write_video(clip("traffic", 4, 32)[0], tmp_path / "clip.gif")
    refused(capsys, "translate", "--checkpoint", "x", "--input", src, "--output", tmp_path / "o.gif", code=1,
            says=("internal error: RuntimeError: something inside (a bug",))


def test_evaluate_on_30_pixel_frames(capsys, finished, tmp_path):
    ir, vis = (np.asarray(c)[:, :30, :30] for c in clip("traffic", 4, 32))
    write_frames(ir, tmp_path / "d" / "testA" / "c0"); write_frames(vis, tmp_path / "d" / "testB" / "c0")
    c, out, err = run(capsys, "evaluate", "--checkpoint", ckpt(finished), "--data", tmp_path / "d", "--device", "cpu",
                      "--out", tmp_path / "t.csv")
    assert c == 0, err
    assert (tmp_path / "t.csv").exists()


def test_fast_translate_keeps_any_size_too(finished):
    from i2vgan.fast import fast_translate
    from i2vgan.train import load_trained
    m = load_trained(ckpt(finished), "cpu")
    x = np.asarray(clip("traffic", 5, 32)[0])[:, :14, :25]
    for fuse in (False, True):
        out = fast_translate(m, x, fuse_predictor=fuse, amp=False)     # float32: bf16 (default where native) rounds otherwise
        assert out.shape == (5, 14, 25, 3) and np.array_equal(out, m.translate(x, fuse_predictor=fuse))
