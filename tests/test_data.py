"Bad input and real files on disk for i2vgan.data (pytest; each case writes its own files into tmp_path)."
import numpy as np, pytest
from PIL import Image
from i2vgan.data import read_frames, write_video, write_strips, TripletDataset, irvi_dataset
from i2vgan.world import clip

def frames(n=6, h=32, w=32, seed=0):
    "Smooth, distinct frames (gradients + moving square): what a lossy codec keeps well."
    y, x = np.mgrid[:h, :w]
    out = []
    for t in range(n):
        f = np.stack([x * 255 // w, y * 255 // h, np.full((h, w), 40 * t % 256)], -1).astype(np.uint8)
        f[4 + t:12 + t, 4:12] = 255
        out.append(f)
    return np.stack(out)

def save_folder(folder, fr, fmt='f{}.png'):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(fr): Image.fromarray(f).save(folder / fmt.format(i))
    return folder

def test_missing_path(tmp_path):
    p = tmp_path / 'nope'
    with pytest.raises(FileNotFoundError, match=r"nope: no such file or folder; expected a folder of images or a video"):
        read_frames(p)
    with pytest.raises(FileNotFoundError, match=r"trainA: no such folder; expected IRVI's layout"):
        irvi_dataset(p)

def test_empty_folder(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match=r"empty: no image files; expected images with extensions \.png"):
        read_frames(tmp_path / 'empty')

def test_too_few_frames(tmp_path):
    d = save_folder(tmp_path / 'two', frames(2))
    with pytest.raises(ValueError, match=r"two has \[2\] frames; expected at least 3 consecutive frames"):
        TripletDataset(d, frames(5), size=16)
    with pytest.raises(ValueError, match=r"at least 5 consecutive frames \(a triplet with stride 2\)"):
        TripletDataset(frames(5), frames(4), stride=2)

def test_frames_of_different_sizes(tmp_path):
    d = save_folder(tmp_path / 'mixed', frames(3))
    Image.fromarray(frames(1, 40, 32)[0]).save(d / 'f3.png')
    fr = read_frames(d)
    fr[0]
    with pytest.raises(ValueError, match=r"f3\.png: frame size 32×40 \(W×H\) differs from f0\.png's 32×32; expected all frames of .*mixed"):
        fr[3]

def test_corrupt_and_truncated_images(tmp_path):
    d = save_folder(tmp_path / 'bad', frames(3))
    (d / 'x.png').write_bytes(b'not a png at all \x00\x01\x02' * 10)
    with pytest.raises(ValueError, match=r"x\.png: cannot decode image .*expected a readable image file"):
        read_frames(d)[-1]
    good = (d / 'f0.png').read_bytes()
    d2 = tmp_path / 'trunc'; d2.mkdir()
    (d2 / 'a.png').write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"a\.png: cannot decode image"):
        read_frames(d2)[0]

def test_unsupported_extension(tmp_path):
    p = tmp_path / 'clip.xyz'; p.write_bytes(b'abc')
    with pytest.raises(ValueError, match=r"clip\.xyz: unsupported extension '\.xyz'; expected a folder of images"):
        read_frames(p)
    with pytest.raises(ValueError, match=r"out\.avi: unsupported video extension '\.avi'; expected '\.mp4' or '\.gif'"):
        write_video(frames(3), tmp_path / 'out.avi')
    with pytest.raises(ValueError, match=r"layout must be 'auto', 'frames' or 'strips'"):
        read_frames(tmp_path, layout='strip')

def test_strip_width_not_divisible_by_3(tmp_path):
    d = tmp_path / 'strips'; d.mkdir()
    Image.fromarray(np.zeros((16, 50, 3), np.uint8)).save(d / 's0.png')
    with pytest.raises(ValueError, match=r"s0\.png: strip width 50 is not divisible by 3; expected frames t, t\+1, t\+2"):
        read_frames(d, layout='strips')

def test_strips_round_trip(tmp_path):
    fr = frames(7)
    write_strips(fr, tmp_path / 's')
    s = read_frames(tmp_path / 's')
    assert len(s) == 5 and all(np.array_equal(s[k], fr[k:k + 3]) for k in range(5))
    ds = TripletDataset(tmp_path / 's', fr, size=None, train=False)
    assert ds[2]['A1'].shape == (3, 32, 32)

def test_mp4_round_trip(tmp_path):
    fr = frames(10, 64, 64)
    p = write_video(fr, tmp_path / 'v.mp4', fps=8)
    v = read_frames(p)
    assert len(v) == 10 and v.shape == (10, 64, 64, 3)
    assert np.abs(np.asarray(v).astype(int) - fr).mean() < 6          # lossy, but close
    assert np.array_equal(v[7], read_frames(p)[7])                    # random access = sequential

def test_mp4_odd_size_exact(tmp_path):
    p = write_video(frames(4, 33, 35), tmp_path / 'odd.mp4')
    assert read_frames(p).shape == (4, 33, 35, 3)                     # odd sizes: yuv444p, not padded

def test_gif_round_trip(tmp_path):
    ir, _ = clip('traffic', 6, 32)
    g = read_frames(write_video(ir, tmp_path / 'ir.gif'))
    assert g.shape == (6, 32, 32, 3)
    assert np.abs(np.asarray(g).astype(int) - ir).max() <= 2

def test_write_video_failure_keeps_existing_file(tmp_path):
    for name in ('keep.mp4', 'keep.gif'):
        p = tmp_path / name
        p.write_bytes(b'precious')
        bad = [frames(1, 32, 32)[0], frames(1, 32, 32)[0], frames(1, 48, 32)[0]]   # frame 2 changes size mid-write
        with pytest.raises(ValueError, match=rf"{name}: frame 2 has shape \(48, 32, 3\), frame 0 has \(32, 32, 3\)"):
            write_video(bad, p)
        assert p.read_bytes() == b'precious'
    assert sorted(x.name for x in tmp_path.iterdir()) == ['keep.gif', 'keep.mp4']   # no temp files left
