"""Compiled training on the CPU: one `FastTrainer` step under `torch.compile` (inductor) equals the eager step —
the loss terms and the weights after one Adam step — in float64, where rounding cannot hide a wrong graph.

It compiles the generators with the anti-aliased up-step (whose replicate padding once stopped inductor in the
backward) and the discriminators: the `cycle-gan` preset at 32 px keeps the compilation as short as a training step's
can be (the other presets add the predictors, VGG segments and PatchNCE taps: more graphs, the same ops)."""
import copy, warnings
import pytest
import torch

torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*RANDOM VGG-19.*")

from i2vgan.core import I2VGAN
from i2vgan.fast import FastTrainer, tiny_config, random_batch

TOL = 1e-9        # float64: largest relative error of a loss term
W_TOL = 1e-5      # largest |Δ weight| after one Adam step, relative to lr. Not 1e-9: Adam's first step is
                  # lr·g/(|g| + 1e-8), and a conv bias before an instance norm has a true gradient of 0, so its
                  # computed g is rounding noise (~1e-17) that eager and compiled kernels round differently.
                  # A wrong graph moves weights by ~lr (measured: 2e-6·lr).


def _one_step(model, data, tmp, compile):
    t = FastTrainer(model, data, tmp, compile=compile, amp=False, device="cpu", progress=False, prefetch=False,
                    ckpt_every=0, sample_every=0, log_every=1)
    batch = t.batch_at(0)
    torch.manual_seed(0)
    terms = t.train_step(batch)
    return {k: float(v) for k, v in terms.items()}, {n: p.detach().clone() for n, p in t.model.named_parameters()}


def test_compiled_training_step_equals_eager(tmp_path):
    torch._dynamo.reset()
    cfg = tiny_config("cycle-gan")
    assert cfg.upsample == "antialiased"
    model = I2VGAN(cfg).double()
    data = [{k: v[0].double() for k, v in random_batch(cfg, seed=s).items()} for s in range(2)]
    eager_terms, eager_w = _one_step(copy.deepcopy(model), data, tmp_path / "eager", compile=False)
    comp_terms, comp_w = _one_step(copy.deepcopy(model), data, tmp_path / "compiled", compile=True)
    assert list(comp_terms) == list(eager_terms)
    for k, v in eager_terms.items(): assert comp_terms[k] == pytest.approx(v, rel=TOL), k
    moved = max(float((eager_w[n] - model.state_dict()[n]).abs().max()) for n in eager_w)
    assert moved > 0.5 * cfg.lr                                     # the step did change the weights (Adam: ≈ lr each)
    worst = max(float((comp_w[n] - eager_w[n]).abs().max()) for n in eager_w)
    assert worst < W_TOL * cfg.lr, worst


def test_compiled_upsample_backward():
    "The op that used to fail alone: Upsample's gradient, compiled, equals eager (float32)."
    from i2vgan.networks import Upsample
    torch._dynamo.reset()
    u = Upsample(4)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(2, 4, 16, 16)
    g_eager = torch.autograd.grad((u(x) * w).sum(), x)[0]
    g_comp = torch.autograd.grad((torch.compile(u, dynamic=False)(x) * w).sum(), x)[0]
    torch.testing.assert_close(g_comp, g_eager, rtol=1e-5, atol=1e-5)
