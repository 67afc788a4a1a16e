"""pytest checks of i2vgan.metrics (exported from nbs/05_metrics.ipynb): properties, bad input, offline weights.

Frames are tiny (32-40 px, 4-6 frames) so the whole file runs in a few seconds on 2 cores.
"""
import math, time
import numpy as np, pytest, torch, torch.nn as nn
from i2vgan import metrics as M


def pan(n=5, size=40, step=(1, 1)):
    return M._pan_clip(n_frames=n, size=size, step=step)


def flicker(clip, seed=0, amount=0.06):
    rng = np.random.default_rng(seed)
    g = clip / 255. * (1 + rng.uniform(-amount, amount, (len(clip), 1, 1, 3))) + rng.uniform(-amount, amount, (len(clip), 1, 1, 1)) / 2
    return (np.clip(g, 0, 1) * 255).round().astype(np.uint8)


class PixelFeatures(nn.Module):
    def forward(self, x): return x.flatten(1).double()


class RandomFeatures(nn.Module):
    def __init__(self):
        super().__init__(); torch.manual_seed(0); self.conv = nn.Conv2d(3, 8, 5, stride=2)
    def forward(self, x): return torch.relu(self.conv(x.float() / 127.5 - 1)).mean((2, 3))


def test_identical_clips():
    v = pan()
    assert M.psnr(v, v) == math.inf and M.psnr(v, v, cap=100) == 100.
    assert M.ssim(v, v) == 1.0
    assert M.tof(v, v) == 0.0
    static = np.repeat(v[:1], 4, 0)
    assert M.warping_error(static, static) == 0.0


def test_psnr_by_hand():
    v = pan(); o = np.clip(v.astype(int) + 7, 0, 255).astype(np.uint8)
    mse = ((o.astype(float) - v)**2).reshape(len(v), -1).mean(1)
    assert M.psnr(o, v) == pytest.approx((10 * np.log10(255**2 / mse)).mean(), rel=1e-12)


def test_flicker_is_caught_by_temporal_metrics_only():
    v = pan(6)
    ir = np.repeat((255 - v.mean(-1)).round().astype(np.uint8)[..., None], 3, -1)
    irf = M.ClipFlows(ir)
    stable, flick = flicker(v, amount=0.), flicker(v)
    assert abs(M.psnr(flick, v) - M.psnr(np.clip(v.astype(int) + 5, 0, 255).astype(np.uint8), v)) < 10
    assert M.warping_error(flick, irf) > 3 * M.warping_error(stable, irf)
    assert M.tof(flick, v) > M.tof(stable, v) == 0.
    # TecoGAN's tOF compares motion: Farneback's polynomial expansion barely sees a per-frame gain (0.02 px here),
    # while a frame that jumps by 2 px is caught
    jitter = v.copy(); jitter[2] = np.roll(v[2], 2, axis=1); jitter[4] = np.roll(v[4], -2, axis=0)
    assert M.tof(jitter, v) > 50 * M.tof(flick, v)


@pytest.mark.parametrize('fn', [M.psnr, M.ssim, M.tof, M.warping_error])
def test_bad_input_names_the_argument(fn):
    v = pan()
    second = 'source' if fn is M.warping_error else 'target' if fn in (M.psnr, M.ssim) else 'reference'
    with pytest.raises(ValueError, match='has 4 frames'): fn(v[:4], v) if fn is M.warping_error else fn(v, v[:4])
    with pytest.raises(ValueError, match=r'frames are \(32, 32\)'): fn(v, v[:, :32, :32])
    with pytest.raises(ValueError, match='expected frames of shape'): fn(v, v[..., 0, 0])
    if fn in (M.psnr, M.ssim):
        with pytest.raises(ValueError, match=f'{second} has dtype float64'): fn(v, v / 255.)


def test_deterministic():
    v, f = pan(), flicker(pan())
    assert M.warping_error(f, v) == M.warping_error(f, v)
    assert M.tof(f, v) == M.tof(f, v)
    assert M.kid(v, f, feature=RandomFeatures()) == M.kid(v, f, feature=RandomFeatures())


def test_frechet_closed_form():
    s1, s2 = np.array([1., 2., 3.]), np.array([2., 2., .5])
    assert M.frechet_distance(np.zeros(3), np.diag(s1**2), np.ones(3), np.diag(s2**2)) == pytest.approx(3 + ((s1 - s2)**2).sum())
    rng = np.random.default_rng(0)
    mu1, sd1, mu2, sd2 = np.array([100., 120, 90]), np.array([20., 10, 15]), np.array([110., 120, 80]), np.array([10., 15, 15])
    draw = lambda mu, sd: np.clip(rng.normal(mu, sd, (20000, 1, 1, 3)), 0, 255).round().astype(np.uint8)
    assert M.fid(draw(mu1, sd1), draw(mu2, sd2), feature=PixelFeatures()) == pytest.approx(325., rel=0.05)


def test_kid_mean_std():
    v = pan(20, 32)
    mean, std = M.kid(v, np.clip(v.astype(int) + [60, -40, 0], 0, 255).astype(np.uint8), feature=RandomFeatures(), subsets=20)
    assert mean > 0 and std > 0 and mean > 3 * std
    with pytest.raises(ValueError, match='subset_size=21'): M.kid(v, v, feature=RandomFeatures(), subset_size=21)


def test_metric_table_roundtrip(tmp_path):
    t = M.MetricTable([dict(clip='a', frames=5, PSNR=20.123456789, KID=0.01, KID_std=0.002, FID=None),
                       dict(clip='all', frames=5, PSNR=math.inf, KID=0.01, KID_std=0.002, FID=None)], notes=['n'])
    md = str(t)
    assert md.splitlines()[0].startswith('| clip |') and '| all |' in md and '0.0100 ± 0.0020' in md
    for ext in ('csv', 'json'):
        t2 = M.MetricTable.load(t.save(tmp_path / f't.{ext}'))
        assert t2.rows == t.rows and t2.columns == t.columns and t2.notes == t.notes
    with pytest.raises(ValueError, match='.csv or .json'): t.save(tmp_path / 't.txt')


def test_evaluate_layout():
    v, f = pan(5), flicker(pan(5))
    ir = np.repeat((255 - v.mean(-1)).round().astype(np.uint8)[..., None], 3, -1)
    clips = [('a', ir, v), ('b', ir, None)]
    t = M.evaluate({'a': f, 'b': f}, clips, feature=RandomFeatures(), kid_subsets=10)
    assert [r['clip'] for r in t.rows] == ['a', 'b', 'all']
    assert t['b']['PSNR'] is None and t['a']['PSNR'] == t['all']['PSNR']
    assert t['a']['FID'] is not None and t['a']['KID_std'] is not None
    assert all(t[c]['E_warp'] > 0 and t[c]['tOF'] > 0 for c in ('a', 'b', 'all'))
    with pytest.raises(ValueError, match="translation of clip 'a'"): M.evaluate({'a': f[:3], 'b': f}, clips)


def test_fid_without_weights_fails_fast(tmp_path, monkeypatch):
    hub = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path)); monkeypatch.delenv('I2VGAN_INCEPTION', raising=False)
    monkeypatch.setattr(M, 'INCEPTION_URL', 'http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth')
    try:
        t0 = time.time()
        with pytest.raises(RuntimeError, match='put it at'): M.fid(pan(), pan(), timeout=2)
        assert time.time() - t0 < 5
        t = M.evaluate({'a': pan()}, [('a', pan(), pan())], metrics=('psnr', 'fid'))
        assert t['a']['FID'] is None and any('FID/KID not computed' in n for n in t.notes)
    finally:
        torch.hub.set_dir(hub)
    with pytest.raises(FileNotFoundError, match='no such file'): M.fid(pan(), pan(), weights=str(tmp_path / 'x.pth'))


def test_irvi_clips(tmp_path):
    from i2vgan.world import clip, make_world, layout_seeds
    make_world(tmp_path, size=32, n_train=1, train_frames=3, n_test=1, test_frames=4, kinds=("traffic",))
    (name, ir, gt), = M.irvi_clips(tmp_path)
    seed = layout_seeds(0, "test", 1)[0]
    assert name == f"traffic_{seed}" and ir.shape == (4, 32, 32, 3)          # one scene: no "<scene>/" prefix
    assert np.array_equal(gt, clip("traffic", 4, 32, seed=seed)[1])
    with pytest.raises(FileNotFoundError, match='no testA/ folder'): M.irvi_clips(tmp_path / 'nothing')
