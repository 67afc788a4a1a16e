"""Data-parallel training on the CPU: 2 processes, gloo backend (torch.multiprocessing.spawn).

Checks, for `i2vgan.fast.DistributedTrainer`:
- after a step both ranks hold bit-identical weights, and their (averaged) gradients equal a single process's
  gradients on the combined batch of 2 — with the internal-similarity term off, since that term is not a mean
  over frames (see notebook 06); with it on, the ranks still agree bit for bit;
- the weights equal the single-process step's up to Adam's first step, which moves every weight by ±lr whatever
  the gradient's size: a gradient that is zero in exact arithmetic (biases before instance norm) is rounding
  noise whose sign may differ, so those entries may differ by 2·lr;
- N + M steps with a checkpoint and fresh processes in between equal N + M straight steps, bit for bit;
- only rank 0 writes the log and the checkpoints.
"""
import os, socket, sys, tempfile
from pathlib import Path
import pytest
import torch
import torch.multiprocessing as mp

LR = 2e-4
CASES = {"no-ins": dict(preset="i2vgan", use_ins=False), "ins": dict(preset="i2vgan")}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _data(cfg, n=6):
    from i2vgan.fast import random_batch
    return [{k: v[0] for k, v in random_batch(cfg, seed=s).items()} for s in range(n)]


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    import warnings; warnings.simplefilter("ignore")
    import torch.distributed as dist
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from i2vgan.core import I2VGAN
    from i2vgan.fast import DistributedTrainer, tiny_config
    res = {}
    for name, kw in CASES.items():
        cfg = tiny_config(**kw)
        t = DistributedTrainer(I2VGAN(cfg), _data(cfg), out / name, progress=False, device="cpu", amp=False)   # float32: compared to 1e-5
        torch.manual_seed(123)
        t.train_step(t.batch_at(0))
        res[name] = {"params": {k: v.clone() for k, v in t.model.state_dict().items()}, "grads": _grads(t.model)}
    cfg = tiny_config("recycle-gan")
    kw = dict(progress=False, device="cpu", ckpt_every=0, sample_every=0, log_every=1)
    DistributedTrainer(I2VGAN(cfg), _data(cfg), out / "straight", **kw).fit(3)
    DistributedTrainer(I2VGAN(cfg), _data(cfg), out / "split", **kw).fit(2)
    resumed = DistributedTrainer(I2VGAN(cfg), _data(cfg), out / "split", **kw)
    resumed.fit(3, resume=True)
    straight = torch.load(sorted((out / "straight" / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    res["resume"] = {"straight": straight["model"], "resumed": resumed.model.state_dict(), "step": resumed.step}
    torch.save(res, out / f"rank{rank}.pt")
    dist.barrier(); dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_run():
    tmp = Path(tempfile.mkdtemp())
    mp.spawn(_worker, args=(2, _free_port(), tmp), nprocs=2, join=True)
    return tmp, [torch.load(tmp / f"rank{r}.pt", weights_only=True) for r in range(2)]


def _single(kw):
    "One FastTrainer step on the combined batch (batch size 2), same start."
    import warnings; warnings.simplefilter("ignore")
    from i2vgan.core import I2VGAN
    from i2vgan.fast import FastTrainer, tiny_config
    cfg = tiny_config(**kw)
    with tempfile.TemporaryDirectory() as tmp:
        t = FastTrainer(I2VGAN(cfg), _data(cfg), tmp, batch_size=2, progress=False, device="cpu", amp=False)
        torch.manual_seed(123)
        t.train_step(t.batch_at(0))
        return t.model.state_dict(), _grads(t.model)


def _net_rel(a, b):
    out = {}
    for net in sorted({k.split(".")[0] for k in b}):
        ks = [k for k in b if k.split(".")[0] == net]
        va, vb = (torch.cat([d[k].flatten().double() for k in ks]) for d in (a, b))
        out[net] = float((va - vb).norm() / vb.norm())
    return out


def test_ranks_identical(ddp_run):
    _, (r0, r1) = ddp_run
    for name in CASES:
        for k, v in r0[name]["params"].items():
            assert torch.equal(v, r1[name]["params"][k]), (name, k)
        for k, v in r0[name]["grads"].items():
            assert torch.equal(v, r1[name]["grads"][k]), (name, k)


def test_equals_combined_batch(ddp_run):
    _, (r0, _) = ddp_run
    params, grads = _single(CASES["no-ins"])
    got = r0["no-ins"]
    assert set(got["grads"]) == set(grads)
    errs = _net_rel(got["grads"], grads)
    assert max(errs.values()) < 1e-5, errs
    diffs = torch.cat([(got["params"][k] - v).abs().flatten() for k, v in params.items() if v.is_floating_point()])
    assert float(diffs.max()) <= 2 * LR * 1.001                    # at most a sign flip of a ~0 gradient
    assert float((diffs > 1e-6).float().mean()) < 0.01, float((diffs > 1e-6).float().mean())


def test_ins_term_is_per_rank(ddp_run):
    "With L_INS on, DDP optimises the mean of per-slice losses: the gradients differ from the combined batch's."
    _, (r0, _) = ddp_run
    _, grads = _single(CASES["ins"])
    errs = _net_rel(r0["ins"]["grads"], grads)
    assert max(errs.values()) > 1e-4, errs


def test_resume_and_rank0_writes(ddp_run):
    tmp, (r0, r1) = ddp_run
    for r in (r0, r1):
        assert r["resume"]["step"] == 3
        for k, v in r["resume"]["straight"].items():
            assert torch.equal(v, r["resume"]["resumed"][k]), k
    log = (tmp / "straight" / "log.jsonl").read_text().splitlines()
    assert [int(l.split('"step": ')[1].split(",")[0]) for l in log] == [1, 2, 3]   # one line per step: rank 0 only
    assert len(list((tmp / "split" / "checkpoints").glob("*.pt"))) == 2
