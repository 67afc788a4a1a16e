"""One training step's gradients on every CPU training path — reference and fast trainer, channels_last off and on,
batch 1 and 2 — against a float64 evaluation of the same step in which instance norm is computed by hand
((x − mean) / sqrt(var + eps), autograd through plain reductions). The float64 side shares no kernel with the
path under test where a kernel is known to go wrong: torch 2.14.1's CPU `instance_norm` backward is wrong for a
batch-1 input when the incoming gradient has channels_last strides (checked directly below)."""
import copy
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from i2vgan.core import I2VGAN
from i2vgan.fast import FastStep, fast_generator_step, fast_discriminator_step, tiny_config, random_batch

TOL = 1e-3   # relative L2 error per network: float32 rounding of one step measures up to 3.2e-4 (P_Y, batch 2), the kernel bug > 0.1


class HandInstanceNorm(nn.Module):
    "Instance norm without affine or running stats, written with plain reductions."
    def __init__(self, eps): super().__init__(); self.eps = eps
    def forward(self, x):
        m = x.mean((2, 3), keepdim=True)
        return (x - m) / torch.sqrt(((x - m) ** 2).mean((2, 3), keepdim=True) + self.eps)

def hand_norms(net: nn.Module) -> nn.Module:
    "Swap every InstanceNorm2d of `net` (in place) for `HandInstanceNorm`."
    for name, m in list(net.named_children()):
        if isinstance(m, nn.InstanceNorm2d): setattr(net, name, HandInstanceNorm(m.eps))
        else: hand_norms(m)
    return net


def test_instance_norm_kernel_bug_is_what_we_guard():
    "The kernel this file guards against, on its own: batch 1 and a channels_last gradient (a property of the build)."
    torch.manual_seed(0)
    x = torch.randn(1, 8, 16, 16, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 16, 16, 8, dtype=torch.float64).permute(0, 3, 1, 2)      # channels_last strides
    exact = torch.autograd.grad(HandInstanceNorm(1e-5)(x), x, g)[0]
    contig = torch.autograd.grad(F.instance_norm(x, eps=1e-5), x, g.contiguous())[0]
    assert (contig - exact).abs().max() < 1e-10                               # the hand norm is the norm
    strided = torch.autograd.grad(F.instance_norm(x, eps=1e-5), x, g)[0]
    if (strided - exact).abs().max() < 1e-10: pytest.skip(f"torch {torch.__version__}: the kernel is correct here")
    assert (strided - exact).abs().max() > 1e-3


def grads_of(model, batch, path, seed=0):
    "Gradients of one generator step (discriminators frozen, as `Trainer`) and one discriminator step."
    step = FastStep(model) if path == "fast" else None
    g_fn = (lambda b: fast_generator_step(step, b)) if step else model.generator_step
    d_fn = (lambda b, f: fast_discriminator_step(step, b, f)) if step else model.discriminator_step
    model.zero_grad(set_to_none=True); model.D_X.requires_grad_(False); model.D_Y.requires_grad_(False)
    torch.manual_seed(seed)
    total, terms, fakes = g_fn(batch); total.backward()
    out = {f"G:{n}": p.grad.detach().double().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True); model.D_X.requires_grad_(True); model.D_Y.requires_grad_(True)
    d_fn(batch, fakes)[0].backward()
    out.update({f"D:{n}": p.grad.detach().double().clone() for n, p in model.named_parameters() if p.grad is not None})
    model.zero_grad(set_to_none=True)
    return out

def net_errors(got: dict, exact: dict) -> dict:
    "Relative L2 error of each network's whole gradient, per step half ('G:G_Y', 'D:D_X', …)."
    assert set(got) == set(exact), sorted(set(got) ^ set(exact))
    nets = sorted({":".join(k.split(".")[:1]) for k in exact})
    out = {}
    for net in nets:
        ks = [k for k in exact if k.split(".")[0] == net]
        a, b = (torch.cat([d[k].flatten() for k in ks]) for d in (got, exact))
        out[net] = float((a - b).norm() / b.norm().clamp_min(1e-30))
    return out

def float64_reference(model, batch, seed=0):
    "The reference step in float64 on a copy whose instance norms are computed by hand (contiguous tensors)."
    m = copy.deepcopy(model).to(torch.float64, memory_format=torch.contiguous_format)
    m.__dict__["perceptual"] = copy.deepcopy(model.perceptual).to(torch.float64) if model.perceptual is not None else None
    hand_norms(m)
    return grads_of(m, {k: v.double().contiguous() for k, v in batch.items()}, "reference", seed)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = I2VGAN(tiny_config("i2vgan-official"))          # every term: EXS, INS, identity, D on predictions
    return model, {B: random_batch(model.config, B=B, seed=B) for B in (1, 2)}

@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("path", ["reference", "fast"])
def test_step_gradients_match_float64(setup, path, channels_last, B):
    model, batches = setup
    exact = float64_reference(model, batches[B])
    m, batch = model, batches[B]
    if channels_last:
        m = copy.deepcopy(model).to(memory_format=torch.channels_last)
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    err = net_errors(grads_of(m, batch, path), exact)
    print(f"{path}, channels_last={channels_last}, batch {B}: worst {max(err.values()):.2e}")
    assert max(err.values()) < TOL, f"{path}, channels_last={channels_last}, batch {B}: {err}"


def test_guard_catches_a_batch1_encoder_pass(setup):
    """The control: encoding ONE frame and sampling patches as CUT's `PatchSampleF` does (a transposed view of the map),
    as the official code does; on a build with the kernel bug its gradient fails this file's tolerance."""
    model, _ = setup
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    def grads(G, x):
        G.zero_grad(set_to_none=True)
        f = G.encode(x, (8,))[0]
        (f.flatten(2).transpose(1, 2)[:, :5] ** 2).sum().backward()
        return {f"G:{n}": p.grad.double() for n, p in G.named_parameters() if p.grad is not None}
    G32, G64 = copy.deepcopy(model.G_Y), hand_norms(copy.deepcopy(model.G_Y).double())
    err = max(net_errors(grads(G32, x), grads(G64, x.double())).values())
    both = max(net_errors(grads(G32, x.repeat(2, 1, 1, 1)), grads(G64, x.double().repeat(2, 1, 1, 1))).values())
    assert both < TOL                                     # the same pass on two frames (as all our paths batch) is right
    if err < TOL: pytest.skip(f"torch {torch.__version__}: the batch-1 pass is correct on this build")
    assert err > 0.1
