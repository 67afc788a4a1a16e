"""The real half of the generator step runs without autograd: the perceptual loss takes the real frame's VGG features
under `no_grad`, and the external similarity loss encodes the real frame (its keys) under `no_grad`. Both were
targets already (real frames need no gradient; PatchNCE detaches its keys, as CUT's and the official code's
`PatchNCELoss` do), so the change must leave every gradient as it was and only remove backward work. Checked here
against the earlier forms, written out below: real and generated frames in ONE autograd call each."""
import copy, warnings
import pytest, torch
import i2vgan.core as core
from i2vgan.core import I2VGAN
from i2vgan.losses import PerceptualLoss, patch_nce_loss
from i2vgan.fast import tiny_config, random_batch, FastStep, fast_generator_step

PRESETS = ("cycle-gan", "recycle-gan", "i2vgan", "i2vgan-official")
TOL = 1e-5   # relative L2 error per network; float32 rounding of a different batch composition measures ~1e-7


def joint_perceptual(self, x, y):
    "The earlier `PerceptualLoss.forward`: x and y through VGG in one call (its backward covers both halves)."
    B = x.shape[0]
    f = self.features(torch.cat([self._prep(x, "x"), self._prep(y, "y")]))
    return self.distance({l: v[:B].float() for l, v in f.items()}, {l: v[B:].float() for l, v in f.items()})

def joint_external(encode, mlp, src, fake, layers, num_patches=256, tau=0.07):
    "The earlier `external_similarity_loss`: keys and queries through the encoder in one call."
    B = src.shape[0]
    feats = encode(torch.cat([src, fake]), layers)
    k_pool, ids = mlp([f[:B] for f in feats], num_patches, None)
    q_pool, _ = mlp([f[B:] for f in feats], num_patches, ids)
    return sum(patch_nce_loss(q, k, tau) for q, k in zip(q_pool, k_pool)) / len(q_pool)

@pytest.fixture
def joint_forms(monkeypatch):
    "Switch the reference step back to the one-call forms for the duration of a `with` block."
    import contextlib
    @contextlib.contextmanager
    def on():
        with monkeypatch.context() as m:
            m.setattr(PerceptualLoss, "forward", joint_perceptual)
            m.setattr(core, "external_similarity_loss", joint_external)
            yield
    return on


def g_step(model, batch, fn, seed=0):
    "Loss terms and generator-half gradients (discriminators frozen, as the trainers do)."
    model.zero_grad(set_to_none=True); model.D_X.requires_grad_(False); model.D_Y.requires_grad_(False)
    torch.manual_seed(seed)
    total, terms, _ = fn(batch); total.backward()
    grads = {n: p.grad.detach().double().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True); model.D_X.requires_grad_(True); model.D_Y.requires_grad_(True)
    return {k: v.detach().double() for k, v in terms.items()}, grads

def net_errors(a, b):
    "Relative L2 error of each network's whole gradient."
    assert set(a) == set(b), sorted(set(a) ^ set(b))
    out = {}
    for net in sorted({k.split(".")[0] for k in b}):
        ks = [k for k in b if k.split(".")[0] == net]
        va, vb = (torch.cat([d[k].flatten() for k in ks]) for d in (a, b))
        out[net] = float((va - vb).norm() / vb.norm().clamp_min(1e-30))
    return out

def model_of(preset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return I2VGAN(tiny_config(preset, size=32))


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("preset", PRESETS)
def test_no_grad_real_half_keeps_every_gradient(preset, B, joint_forms):
    model = model_of(preset)
    batch = random_batch(model.config, B=B, seed=B)
    terms, grads = g_step(model, batch, model.generator_step)
    with joint_forms(): terms0, grads0 = g_step(model, batch, model.generator_step)
    assert list(terms) == list(terms0)
    for k in terms: assert torch.allclose(terms[k], terms0[k], rtol=1e-5, atol=1e-7), (k, terms[k], terms0[k])
    err = net_errors(grads, grads0)
    print(f"{preset}, batch {B}: worst gradient error {max(err.values()):.1e}")
    assert max(err.values()) < TOL, err
    fast_terms, fast_grads = g_step(model, batch, lambda b: fast_generator_step(FastStep(model), b))   # and the fast step
    assert max(net_errors(fast_grads, grads0).values()) < 1e-4


def backward_flops(model, batch, fn):
    "FLOPs of the convolution backward passes of one generator step."
    from torch.utils.flop_counter import FlopCounterMode
    model.D_X.requires_grad_(False); model.D_Y.requires_grad_(False)
    torch.manual_seed(0)
    with FlopCounterMode(display=False) as fc: fn(batch)[0].backward()
    model.zero_grad(set_to_none=True); model.D_X.requires_grad_(True); model.D_Y.requires_grad_(True)
    return sum(f for op, f in fc.get_flop_counts()["Global"].items() if "backward" in str(op))

@pytest.mark.parametrize("preset", ["i2vgan", "i2vgan-official"])
def test_no_grad_real_half_removes_backward_work(preset, joint_forms):
    "The backward work that goes: a VGG input-gradient pass per real frame, an encoder pass per EXS key frame."
    model = model_of(preset)
    batch = random_batch(model.config, B=1)
    now = backward_flops(model, batch, model.generator_step)
    with joint_forms(): before = backward_flops(model, batch, model.generator_step)
    from torch.utils.flop_counter import FlopCounterMode
    x = torch.zeros(1, 3, model.config.size, model.config.size)
    with FlopCounterMode(display=False) as fc, torch.no_grad(): model.perceptual.features(x)
    vgg_frame = fc.get_total_flops()        # one VGG forward; its input-gradient backward costs about the same
    assert before - now > 8 * 0.5 * vgg_frame, (before, now, vgg_frame)   # 8 real frames' VGG backward passes gone (at least half each)
