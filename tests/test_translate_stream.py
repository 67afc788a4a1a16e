"""Video in, video out: translation streams in chunks (equal to whole-clip translation, fused or not), the CLI keeps
the input's frame rate and length, a full disk is named and leaves no partial file, and `translate` checks its input."""
import errno, os, shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pytest
import torch

from i2vgan import cli, data
from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.data import read_frames, to_tensor, to_uint8, write_frames, write_video
from i2vgan.world import clip

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return I2VGAN(I2VGANConfig.preset("i2vgan", "tiny", vgg_weights="random", use_perceptual=False))


@pytest.fixture(scope="module")
def ir():
    return np.asarray(clip("traffic", 29, 32, seed=3)[0])


@torch.no_grad()
def whole_clip(m, x, fuse):
    "The reference: G_Y on every frame in one call; with `fuse`, P_Y on every pair in one call (the formula of notebook 03)."
    m.eval()
    f = m.G_Y(to_tensor(x))
    if fuse and len(f) > 2: f = torch.cat([f[:2], (m.P_Y(f[:-2], f[1:-1]) + f[2:]) / 2])
    m.train()
    return to_uint8(f)


# ---- streaming ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fuse", [False, True])
def test_streamed_chunks_equal_whole_clip_translation(model, ir, fuse):
    ref = whole_clip(model, ir, fuse)
    for bs in (2, 3, 4, 7, 16, 28, 29, 64):                  # borders everywhere: after 2 frames, mid-pair, one before the end
        chunks = list(model.translate_chunks(ir, fuse_predictor=fuse, batch_size=bs))
        assert [len(c) for c in chunks] == [min(bs, len(ir) - a) for a in range(0, len(ir), bs)]
        assert np.array_equal(np.concatenate(chunks), ref), bs
    one = np.concatenate(list(model.translate_chunks(ir, fuse_predictor=fuse, batch_size=1)))
    assert np.abs(one.astype(int) - ref).max() <= 1          # batch 1 takes another convolution path: float rounding only


def test_streamed_padded_frames_and_tensor_input(model, ir):
    x = ir[:11, :30, :27]                                     # padded to a size the networks take, cropped back
    for fuse in (False, True):
        whole = model.translate(x, fuse_predictor=fuse, batch_size=len(x))
        assert whole.shape == x.shape
        assert np.array_equal(np.concatenate(list(model.translate_chunks(x, fuse_predictor=fuse, batch_size=3))), whole)
    pairs = list(model.translate_chunks(to_tensor(ir[:7]), batch_size=3, with_input=True))
    assert np.array_equal(np.concatenate([p[0] for p in pairs]), ir[:7])      # the input comes back with its translation
    assert np.array_equal(np.concatenate([p[1] for p in pairs]), model.translate(ir[:7], batch_size=3))


def test_translate_reads_a_video_lazily(model, ir, tmp_path, monkeypatch):
    "A clip is read as it is translated: never more than a chunk (and the frame that sizes it) ahead of the output."
    src = write_video(ir, tmp_path / "ir.mp4")
    seen = []
    get = data.VideoFile._get
    monkeypatch.setattr(data.VideoFile, "_get", lambda self, i: seen.append(i) or get(self, i))
    for k, c in enumerate(model.translate_chunks(read_frames(src), fuse_predictor=True, batch_size=4)):
        assert max(seen) < 4 * (k + 1)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    "A checkpoint of a 2-step run on a small world."
    from i2vgan.world import make_world
    world = make_world(tmp_path_factory.mktemp("data") / "world", size=32, n_train=2, train_frames=5, n_test=1, test_frames=4,
                       kinds=("traffic",))
    out = tmp_path_factory.mktemp("run") / "run"
    cli.main([str(a) for a in ("train", "--data", world, "--steps", 2, "--out", out, "--ckpt-every", 2, "--set", "ngf=8",
                               "--set", "npf=8", "--set", "ndf=8", "--vgg-weights", "random", "--device", "cpu", "--sample-every", "0")])
    return str(sorted((out / "checkpoints").glob("*.pt"))[-1])


def run(capsys, *args):
    capsys.readouterr()
    try: cli.main([str(a) for a in args]); code = 0
    except SystemExit as e: code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_streams_side_by_side_with_ground_truth(ckpt, ir, tmp_path, monkeypatch, capsys):
    "The side-by-side video is infrared | fused translation | ground truth, written while the input is still being read."
    from i2vgan.train import load_trained
    src, gt = write_video(ir[:13], tmp_path / "ir.mp4"), write_frames(ir[:13, :, ::-1], tmp_path / "gt")[0].parent
    written, reads = [], []
    get = data.VideoFile._get
    monkeypatch.setattr(data.VideoFile, "_get", lambda self, i: reads.append(i) or get(self, i))
    def capture(frames, path, fps=8, **kw):
        for f in frames: written.append(f); assert max(reads) < len(written) + 5      # at most a chunk (3) + the sizing frame ahead
        Path(path).write_bytes(b"")
        return Path(path)
    monkeypatch.setattr(data, "write_video", capture)
    code, out, err = run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", tmp_path / "o.mp4", "--side-by-side",
                         "--ground-truth", gt, "--fuse", "--batch-size", 3, "--device", "cpu")
    assert code == 0, err
    x = np.asarray(read_frames(src))
    want = np.concatenate([x, load_trained(ckpt, "cpu").translate(x, fuse_predictor=True, batch_size=13), ir[:13, :, ::-1]], 2)
    assert np.array_equal(np.stack(written), want)


def test_cli_ground_truth_of_another_length_is_refused_before_work(ckpt, ir, tmp_path, capsys):
    src, gt = write_video(ir[:6], tmp_path / "ir.mp4"), write_video(ir[:5], tmp_path / "gt.mp4")
    code, _, err = run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", tmp_path / "o.mp4", "--side-by-side",
                       "--ground-truth", gt)
    assert code == 2 and err.count("\n") == 1 and "5 frames" in err and "6" in err, err
    assert not (tmp_path / "o.mp4").exists()


# ---- frame rate and length ---------------------------------------------------------------------------------------------
def mp4_rate_and_length(path) -> tuple:
    "What the container says, read by imageio itself: (frames per second, number of frames)."
    import imageio.v2 as iio
    r = iio.get_reader(path, format="FFMPEG")
    try: return r.get_meta_data()["fps"], r.count_frames()
    finally: r.close()


@pytest.mark.parametrize("ext", [".mp4", ".gif"])
def test_output_keeps_the_input_frame_rate_and_length(ckpt, tmp_path, capsys, ext):
    frames = np.asarray(clip("traffic", 50, 32, seed=1)[0])               # 2 s at 25 fps
    src = write_video(frames, tmp_path / f"in{ext}", fps=25)
    code, out, err = run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", tmp_path / "o.mp4", "--device", "cpu")
    assert code == 0, err
    assert mp4_rate_and_length(tmp_path / "o.mp4") == (25, 50) and "25 fps" in out
    code, _, err = run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", tmp_path / "p.mp4", "--fps", 10)
    assert code == 0, err
    assert mp4_rate_and_length(tmp_path / "p.mp4") == (10, 50)            # --fps overrides
    assert read_frames(src).fps == 25


def test_image_folders_and_gifs_without_a_rate_keep_the_default(ckpt, ir, tmp_path, capsys):
    from PIL import Image
    folder = write_frames(ir[:4], tmp_path / "frames")[0].parent
    ims = [Image.fromarray(f) for f in ir[:4]]
    ims[0].save(tmp_path / "norate.gif", save_all=True, append_images=ims[1:])  # no duration recorded
    assert read_frames(tmp_path / "norate.gif").fps is None
    for src in (folder, tmp_path / "norate.gif"):
        out = tmp_path / f"{Path(src).stem}.mp4"
        assert run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", out)[0] == 0
        assert mp4_rate_and_length(out) == (8, 4)
    assert "default: the input video's own rate; 8 for image folders and GIFs" in " ".join(
        cli.parser()._subparsers._group_actions[0].choices["translate"].format_help().split())


# ---- full disk ---------------------------------------------------------------------------------------------------------
class FailingWriter:
    "An imageio writer that writes a little, then fails as ffmpeg's pipe does when the disk fills up."
    def __init__(self, path, error, after=3): self.path, self.error, self.after, self.n = Path(path), error, after, 0
    def append_data(self, f):
        self.n += 1
        with open(self.path, "ab") as fh: fh.write(b"x" * 1000)
        if self.n > self.after: raise self.error
    def close(self): pass


FFMPEG_BROKEN_PIPE = ("[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\n\nFFMPEG STDERR OUTPUT:\n"
                      "[out#0/mp4 @ 0x1] Error muxing a packet\nav_interleaved_write_frame(): No space left on device\n")


@pytest.mark.parametrize("error,free", [(IOError(FFMPEG_BROKEN_PIPE), 10**9),            # ffmpeg says why
                                        (BrokenPipeError(errno.EPIPE, "Broken pipe"), 0),  # a bare broken pipe on a full disk
                                        (OSError(errno.ENOSPC, "No space left on device"), 0)])
def test_full_disk_is_named_and_the_partial_file_removed(ckpt, ir, tmp_path, monkeypatch, capsys, error, free):
    import imageio.v2 as iio
    src = write_video(ir[:8], tmp_path / "ir.mp4")
    out_dir = tmp_path / "out"; out_dir.mkdir()
    monkeypatch.setattr(iio, "get_writer", lambda path, **kw: FailingWriter(path, error))
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=free))
    code, _, err = run(capsys, "translate", "--checkpoint", ckpt, "--input", src, "--output", out_dir / "o.mp4", "--batch-size", 2)
    assert code == 2 and err.count("\n") == 1 and "Broken pipe" not in err, err
    assert f"no space left on {out_dir} ({free // 10**6} MB free" in err and "partial file was removed" in err, err
    assert list(out_dir.iterdir()) == []


def test_other_ffmpeg_failures_name_the_file_not_the_pipe(ir, tmp_path, monkeypatch):
    import imageio.v2 as iio
    monkeypatch.setattr(iio, "get_writer", lambda path, **kw: FailingWriter(path, IOError(
        "[Errno 32] Broken pipe\n\nFFMPEG COMMAND:\nffmpeg -y ...\n\nFFMPEG STDERR OUTPUT:\nError initializing output stream: encoder not found")))
    with pytest.raises(OSError) as e: write_video(ir[:6], tmp_path / "o.mp4")
    assert str(e.value).startswith(f"{tmp_path / 'o.mp4'}: ffmpeg stopped writing after 3 frames (Error initializing")
    assert list(tmp_path.iterdir()) == []


def test_partial_file_of_a_killed_writer_is_removed_at_the_next_start(ir, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"]); dead.wait()
    stale, live = tmp_path / f".o.{dead.pid}-0badc0de.tmp.mp4", tmp_path / f".o.{os.getpid()}-0000beef.tmp.mp4"
    stale.write_bytes(b"half"); live.write_bytes(b"busy")                     # `live`: a writer still at work
    write_video(ir[:3], tmp_path / "o.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["o.mp4", live.name])


# ---- translate's input checks ------------------------------------------------------------------------------------------
def refused(f, *needles):
    with pytest.raises((ValueError, TypeError)) as e: f()
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg


def test_translate_refuses_tensors_outside_minus_one_to_one_and_non_finite(model, ir):
    x = to_tensor(ir[:3])
    refused(lambda: model.translate((x + 1) * 127.5), "to 255", "expected [-1, 1]")
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = x.clone(); y[1, 0, 5, 5] = bad
        refused(lambda: model.translate(y), "NaN or inf")
    refused(lambda: model.translate(torch.from_numpy(ir[:3])), "torch.uint8 tensor", "float tensor in [-1, 1]")


def test_translate_reads_one_frame_as_one_frame(model, ir):
    out = model.translate(ir[4])                                              # H×W×3
    assert out.shape == (1, 32, 32, 3) and np.array_equal(out, model.translate(ir[4:5]))
    assert np.array_equal(model.translate(to_tensor(ir[4])), out)            # C×H×W
    assert model.translate(ir[4, :, :, 0]).shape == (1, 32, 32, 3)           # one grey H×W frame


def test_translate_refuses_no_frames_bad_batch_sizes_and_mixed_sizes(model, ir):
    for empty in (ir[:0], [], torch.zeros(0, 3, 32, 32)): refused(lambda: model.translate(empty), "no frames")
    for bs in (0, -1, 2.5): refused(lambda: model.translate(ir[:3], batch_size=bs), "batch_size", "≥ 1")
    refused(lambda: model.translate([ir[0], ir[1, :16], ir[2]]), "frame 1 has shape (16, 32, 3)", "frame 0 has (32, 32, 3)", "one size")
