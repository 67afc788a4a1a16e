"""The official I2V-GAN training step against ours, on the CPU, in one process.

    python scripts/peer_bench.py --official /path/to/I2V-GAN [--size 128 --ngf 16 --steps 5 --warmup 2 --threads 1 --timer cpu]
    python scripts/peer_bench.py --official /path/to/I2V-GAN --flops              # FLOPs by operator: flops.json
    python scripts/peer_bench.py --official /path/to/I2V-GAN --profile --steps 2  # operators' time, the core's peak: profile.json

`--official` is a checkout of https://github.com/BIT-DA/I2V-GAN (not part of this repository). The script builds its
model with the options of its README's training command (only the frame size and ngf changed; CPU, batch 1, no
visdom/html), times `optimize_parameters()`, then our reference step (`Trainer`, preset `i2vgan-official`), our fast
step (`FastTrainer`) in float32 and, on a CPU with native bf16, in bf16 autocast. The rows are timed in turn, one
step each per round (the order rotating every round), so that a change of load on a shared machine hits all of them.
It prints a table and writes results/peer-bench/peer.json (`--timer cpu`: the medians are the process's CPU time per
step, steadier than wall time when other work shares the cores; both are kept).
"""
from __future__ import annotations
import argparse, contextlib, datetime, json, os, statistics, sys, tempfile, time, warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch
import torchvision
from i2vgan.reproduce import machine_info

# The README's training command (https://github.com/BIT-DA/I2V-GAN#train); --dataroot, --display_env and --name only
# name files and the visdom window, which this script never opens.
README_COMMAND = ["--dataroot", "unused", "--display_env", "unused", "--name", "peer_bench",
                  "--model", "i2vgan", "--which_model_netG", "resnet_6blocks", "--no_dropout", "--pool_size", "0",
                  "--which_model_netP", "unet_128", "--npf", "8", "--dataset_mode", "unaligned_triplet"]


@contextlib.contextmanager
def official_on_cpu():
    """The two runtime patches the official code needs on a CPU-only machine, undone on exit.

    - `nn.Module.cuda` returns the module unchanged: the official code calls `.cuda()` unconditionally on its
      PatchNCE and GAN criteria and on the projection MLPs it creates lazily during the first step.
    - `torchvision.models.vgg19(pretrained=True)` builds VGG-19 with random weights (seeded): there is no network
      here, and torchvision 0.29 no longer takes `pretrained`. Our side uses seeded random VGG weights too.
    """
    cuda, vgg19 = torch.nn.Module.cuda, torchvision.models.vgg19
    torch.nn.Module.cuda = lambda self, device=None: self
    torchvision.models.vgg19 = lambda pretrained=False, **kw: vgg19(weights=None)
    try: yield
    finally: torch.nn.Module.cuda, torchvision.models.vgg19 = cuda, vgg19


def build_official(root:Path, size:int, ngf:int, seed:int=0):
    "The official I2VGAN model, built as its train.py builds it, with the README command's options."
    if not (root / "models" / "i2v_gan_model.py").exists():
        sys.exit(f"--official {root}: expected a checkout of BIT-DA/I2V-GAN (models/i2v_gan_model.py is missing)")
    # No module stubs are needed: the model's import path (models/, util/util.py, util/image_pool.py, options/)
    # imports neither visdom nor dominate/util.html; only train.py's Visualizer does, and it is not imported here.
    sys.path.insert(0, str(root))
    from options.train_options import TrainOptions
    from models.models import create_model
    parser = TrainOptions()
    parser.initialize()
    # TrainOptions.parse() also sets a CUDA device and writes checkpoints/<name>/opt.txt: do its option part only
    opt = parser.parser.parse_args(README_COMMAND + ["--fineSize", str(size), "--loadSize", str(size), "--ngf", str(ngf),
                                                     "--gpu_ids", "-1", "--no_html", "--display_id", "0",
                                                     "--batchSize", "1", "--batch_size", "1"])
    opt.isTrain, opt.gpu_ids = True, []
    torch.manual_seed(seed)
    with official_on_cpu(), contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_model(opt)
    return model, opt


def official_settings(model, opt) -> dict:
    "What the official model was built with, read off the model itself where possible."
    n_convs_d = sum(isinstance(m, torch.nn.Conv2d) for m in model.netD_A.modules())
    return {"size": opt.fineSize, "ngf": opt.ngf, "ndf": opt.ndf, "netG": opt.which_model_netG, "netP": opt.which_model_netP,
            "netP width": model.netP_A.model.model[0].out_channels, "netD": opt.which_model_netD,
            "D strided layers": n_convs_d - 2, "batch": opt.batchSize, "pool_size": opt.pool_size,
            "identity": opt.identity, "lambda_A": opt.lambda_A, "lambda_B": opt.lambda_B, "lam_EXS": opt.lam_EXS,
            "lam_INS": opt.lam_INS, "nce_layers": opt.nce_layers, "num_patches": opt.num_patches, "netF_nc": opt.netF_nc,
            "nce_T": opt.nce_T, "no_antialias": opt.no_antialias, "no_antialias_up": opt.no_antialias_up,
            "lr": opt.lr, "beta1": opt.beta1}


def our_config(size:int, ngf:int):
    from i2vgan.core import I2VGANConfig
    # the official predictor is a U-Net of width ngf (its --npf is ignored for U-Nets); unet_128 has 7 levels
    return I2VGANConfig.preset("i2vgan-official", "paper", size=size, ngf=ngf, npf=ngf, unet_downs=7, vgg_weights="random")


def our_trainer(cfg, data, out_dir, fast:bool, amp:bool):
    from i2vgan.core import I2VGAN
    from i2vgan.fast import make_trainer
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = I2VGAN(cfg)
    return make_trainer(model, data, out_dir, fast=fast, batch_size=1, device="cpu", progress=False, amp=amp)


def param_counts(official, ours) -> dict:
    "Parameters of each network on both sides (official G_B is our G_Y, …), after the steps (the official MLPs are lazy)."
    from i2vgan.core import OFFICIAL_NAMES
    n = lambda net: sum(p.numel() for p in net.parameters())
    out = {theirs: [n(getattr(official, "net" + theirs)), n(getattr(ours, mine))] for theirs, mine in OFFICIAL_NAMES.items()}
    bad = {k: v for k, v in out.items() if v[0] != v[1]}
    if bad: print(f"warning: parameter counts differ: {bad}", file=sys.stderr)
    return out


def official_input(batch:dict) -> dict:
    "Our batch (A0…B2, each 1×3×H×W) as the official `set_input` takes it."
    return {**{k: batch[k].clone() for k in ("A0", "A1", "A2", "B0", "B1", "B2")}, "A_paths": ["random"], "B_paths": ["random"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, type=Path, help="a checkout of BIT-DA/I2V-GAN")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per row first")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="what 's/step' measures: wall time, or the process's CPU time (steadier on a shared machine); both are kept")
    ap.add_argument("--out", type=Path, default=None, help="default: results/peer-bench/peer.json (flops.json with --flops)")
    ap.add_argument("--flops", action="store_true", help="count the FLOPs of one step of each row instead of timing")
    ap.add_argument("--profile", action="store_true", help="profile --steps steps of each row (torch.profiler, rows interleaved) "
                    "and measure the core's matrix-product rate, instead of timing")
    a = ap.parse_args(argv)
    if a.flops and a.profile: ap.error("--flops and --profile: choose one")
    a.out = a.out or REPO / "results" / "peer-bench" / ("flops.json" if a.flops else "profile.json" if a.profile else "peer.json")
    torch.set_num_threads(a.threads)
    from i2vgan.fast import random_batch, native_bf16

    official, opt = build_official(a.official.resolve(), a.size, a.ngf)
    cfg = our_config(a.size, a.ngf)
    data = [{k: v[0] for k, v in random_batch(cfg, seed=s).items()} for s in range(2)]   # seeded random triplets
    bf16 = native_bf16("cpu")
    tmp = tempfile.TemporaryDirectory()
    rows = {"official optimize_parameters": None, "ours: reference step": (False, False), "ours: fast step": (True, False)}
    if bf16: rows["ours: fast step + bf16"] = (True, True)
    trainers = {name: our_trainer(cfg, data, Path(tmp.name) / str(i), *fa) for i, (name, fa) in enumerate(rows.items())
                if fa is not None}
    batches = [next(iter(trainers.values())).batch_at(i) for i in range(2)]

    def step(name, i):
        b = batches[i % 2]
        if name.startswith("official"):
            with official_on_cpu():
                official.set_input(official_input(b)); official.optimize_parameters()
        else: trainers[name].train_step(b)

    if a.flops: return count_flops(a, step, [n for n in rows if "bf16" not in n], trainers)
    if a.profile: return profile_rows(a, step, list(rows))
    names, times = list(rows), {n: [] for n in rows}
    clocks = {n: {"wall": [], "cpu": []} for n in rows}
    t_start, load_start = time.perf_counter(), os.getloadavg()[0]
    for r in range(a.warmup + a.steps):
        order, last = names[r % len(names):] + names[:r % len(names)], {}    # rotate who goes first
        for n in order:
            t0, c0 = time.perf_counter(), time.process_time(); step(n, r)
            dt = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
            last[n] = dt[a.timer]
            if r >= a.warmup:
                times[n].append(last[n])
                for k in dt: clocks[n][k].append(dt[k])
        print(f"round {r + 1}/{a.warmup + a.steps}{' (warm-up)' if r < a.warmup else ''}: "
              + ", ".join(f"{n} {last[n]:.2f} s" for n in names), file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    params = param_counts(official, next(t for n, t in trainers.items() if "reference" in n).model)
    tmp.cleanup()

    ref = statistics.median(times[names[0]])
    table = [{"row": n, "s/step": statistics.median(times[n]), "steps/s": 1 / statistics.median(times[n]),
              "× official": ref / statistics.median(times[n]), "times": times[n],
              "wall s/step": statistics.median(clocks[n]["wall"]), "cpu s/step": statistics.median(clocks[n]["cpu"]),
              "wall times": clocks[n]["wall"], "cpu times": clocks[n]["cpu"]} for n in names]
    print(f"{machine_info()['cpu']}, torch {torch.__version__}, {a.threads} thread(s), {a.size}×{a.size}, ngf {a.ngf}, batch 1, "
          f"{a.warmup} warm-up + {a.steps} timed steps per row (median)")
    print("| row | s/step | steps/s | × official |\n|---|---|---|---|")
    for t in table: print(f"| {t['row']} | {t['s/step']:.2f} | {t['steps/s']:.3f} | {t['× official']:.2f} |")

    res = {"date": datetime.date.today().isoformat(), "machine": f"{machine_info()['cpu']}, {os.cpu_count()} CPUs",
           "torch": torch.__version__, "threads": a.threads, "native bf16": bf16,
           "settings": {"size": a.size, "ngf": a.ngf, "batch": 1, "warmup": a.warmup, "steps": a.steps,
                        "timer": ("time.perf_counter" if a.timer == "wall" else "time.process_time (the process's CPU time: "
                                  "steadier than wall time on a shared machine, one thread)")
                                 + " per step, rows interleaved (one step each per round, order rotating)",
                        "official command": "python train.py " + " ".join(README_COMMAND) + f" --fineSize {a.size} --loadSize {a.size} --ngf {a.ngf} --gpu_ids -1 --no_html --display_id 0",
                        "official": official_settings(official, opt),
                        "ours": {k: v for k, v in cfg.to_dict().items() if k in (
                            "name", "size", "ngf", "npf", "unet_downs", "n_blocks", "ndf", "n_layers_d", "use_identity",
                            "d_sees_predictions", "perceptual_form", "vgg_layers", "vgg_weights", "nce_layers", "nce_after_relu",
                            "num_patches", "mlp_units", "train_mlp", "pool_size", "lambda_exs", "lambda_ins")}},
           "parameters (official name: official, ours)": params,
           "wall seconds": wall, "load average (1 min) at start and end": [load_start, os.getloadavg()[0]],
           "rows": [{k: v for k, v in t.items()} for t in table],
           "notes": NOTES}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


def count_flops(a, step, names, trainers):
    "FLOPs of one step of each row (after one untimed step: the official MLPs are created in the first), and of VGG-19."
    from torch.utils.flop_counter import FlopCounterMode
    from i2vgan.fast import _run_segments, _vgg_segments
    gflop, by_op = {}, {}
    for n in names:
        step(n, 0)
        with FlopCounterMode(display=False) as fc: step(n, 1)
        gflop[n] = fc.get_total_flops() / 1e9
        by_op[n] = {str(op).split(".")[-1]: f / 1e9 for op, f in fc.get_flop_counts()["Global"].items()}
    pcp = next(iter(trainers.values())).model.perceptual
    with FlopCounterMode(display=False) as fc, torch.no_grad(): _run_segments(_vgg_segments(pcp), torch.zeros(1, 3, a.size, a.size))
    vgg = fc.get_total_flops() / 1e9
    print(f"GFLOP per step: " + ", ".join(f"{n} {g:.0f}" for n, g in gflop.items()) + f"; VGG-19 forward per frame {vgg:.1f}")
    res = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
           "settings": {"size": a.size, "ngf": a.ngf, "batch": 1, "counter": "torch.utils.flop_counter.FlopCounterMode, one step"},
           "GFLOP/step": gflop, "GFLOP/step by operator": by_op, "VGG-19 forward GFLOP per frame": vgg,
           "notes": FLOPS_NOTES}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


def core_peak() -> dict:
    """The core's float32 peak from what the CPU reports (vector width from its flags, clock from /proc/cpuinfo), and
    the rates one thread reaches on large matrix products (float32, and bf16 where native)."""
    flags, mhz = set(), None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags: flags = set(line.split(":", 1)[1].split())
            if line.startswith("cpu MHz") and mhz is None: mhz = float(line.split(":", 1)[1])
    except OSError: pass
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fma_units = 2 if "fma" in flags else 1      # server cores with AVX-512 issue two FMAs a cycle (ports 0 and 5)
    out = {"vector": "AVX-512" if lanes == 16 else "AVX2" if lanes == 8 else "SSE", "float32 lanes": lanes,
           "FMA units (assumed)": fma_units, "clock MHz (/proc/cpuinfo)": mhz,
           "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}
    if mhz: out["float32 peak GFLOP/s"] = lanes * fma_units * 2 * mhz / 1e3   # an FMA is 2 FLOPs per lane per unit per cycle
    def rate(dtype, n=2048, reps=6):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(reps):
            t0 = time.process_time(); a @ b; best = min(best, time.process_time() - t0)   # CPU time: load-proof
        return 2 * n ** 3 / best / 1e9
    out["float32 matmul GFLOP/s (2048², best of 6)"] = rate(torch.float32)
    if out["amx_bf16"] or out["avx512_bf16"]: out["bf16 matmul GFLOP/s (2048², best of 6)"] = rate(torch.bfloat16)
    return out


def _op_kind(name:str) -> str:
    "Which kind of work a profiler operator does: convolution (forward or backward), matrix product, or the rest."
    if "convolution" in name: return "convolution"
    if name in ("aten::bmm", "aten::mm", "aten::addmm", "aten::matmul", "aten::linear", "aten::baddbmm"): return "matrix product"
    return "other"

def profile_rows(a, step, names):
    "Self CPU time by operator of each row (torch.profiler over --steps steps per row, one per round), and the core's peak."
    from torch.profiler import profile, ProfilerActivity
    os.environ.setdefault("KINETO_LOG_LEVEL", "5")
    for n in names: step(n, 0)                                   # warm-up (the official MLPs are created in the first step)
    ops = {n: {} for n in names}; wall = {n: 0.0 for n in names}
    for r in range(a.steps):
        for n in names[r % len(names):] + names[:r % len(names)]:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter(); step(n, r + 1); wall[n] += time.perf_counter() - t0
            for e in prof.key_averages():
                ops[n][e.key] = ops[n].get(e.key, 0.0) + e.self_cpu_time_total / 1e6 / a.steps
        print(f"profiled round {r + 1}/{a.steps}", file=sys.stderr, flush=True)
    rows = {}
    for n in names:
        busy = sum(ops[n].values())
        kinds = {}
        for k, v in ops[n].items(): kinds[_op_kind(k)] = kinds.get(_op_kind(k), 0.0) + v
        top = sorted(ops[n].items(), key=lambda kv: -kv[1])[:12]
        rows[n] = {"wall s/step (profiled)": wall[n] / a.steps, "busy s/step": busy,
                   "s/step by kind": kinds, "top operators": [{"operator": k, "s/step": v, "share": v / busy} for k, v in top]}
    peak = core_peak()
    print(f"{machine_info()['cpu']}: float32 peak {peak.get('float32 peak GFLOP/s', float('nan')):.0f} GFLOP/s from flags and clock, "
          f"matmul {peak['float32 matmul GFLOP/s (2048², best of 6)']:.0f} GFLOP/s")
    for n, r in rows.items():
        print(f"{n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["s/step by kind"].items()))
    res = {"date": datetime.date.today().isoformat(), "machine": f"{machine_info()['cpu']}, {os.cpu_count()} CPUs",
           "torch": torch.__version__, "threads": a.threads,
           "settings": {"size": a.size, "ngf": a.ngf, "batch": 1, "steps": a.steps,
                        "profiler": "torch.profiler, CPU activity, self time per operator, averaged over the profiled steps"},
           "core": peak, "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


FLOPS_NOTES = [
    "FLOPs of convolutions and matrix products (forward and backward), as FlopCounterMode counts them.",
    "VGG-19 is run up to relu5_1 (the official form's five Gram layers). A translated frame costs a forward "
    "and an input-gradient backward (its weights are frozen), about twice a forward; a real frame a forward.",
    "The official step and our reference step run VGG on 8 translated and 8 real frames, the real ones without "
    "autograd (ours: PerceptualLoss takes a target's features under no_grad), and encode the real frame of each "
    "external-similarity call without a backward pass (the official code detaches the keys; ours encodes them under no_grad)."]

NOTES = [
    "Runtime patches of the official code (no source changed): nn.Module.cuda returns the module unchanged (it calls "
    ".cuda() unconditionally on PatchNCELoss, GANLoss and the lazily created projection MLPs); "
    "torchvision.models.vgg19(pretrained=True) builds VGG-19 with seeded random weights (no network; torchvision 0.29 "
    "has no `pretrained`). No module stubs were needed: the model's import path imports neither visdom nor dominate.",
    "Same on both sides: frame size, ngf, ResNet generator with 6 blocks and the official up-steps, U-Net predictor of "
    "7 levels and width ngf (the README's unet_128; --npf 8 is ignored for U-Nets), PatchGAN D with 3 strided layers and "
    "ndf 64, batch 1, no image pool, LSGAN, the official perceptual form (L1 + relu4_1 L1 + 100·Gram MSE over 5 VGG "
    "layers), identity loss 0.5·λ, D also sees P(real_t, real_t+1), PatchNCE on layers 0,4,8,12,16 with 256 patches, "
    "256-unit MLPs that do not learn, random VGG weights.",
    "Network passes per step, official optimize_parameters vs our reference step: the same — 14 full generator passes "
    "(4 identity, 4 translations, 4 cycle, 2 recycle), 24 encoder-only passes (6 for the real-triplet INS profiles, "
    "6 for the translated ones, 12 for EXS: 2 per translated frame), 4 predictor passes, 8 perceptual-loss calls "
    "(16 VGG passes), 6 D passes in the generator half and 16 in the D half. Our fast step reuses the taps of the "
    "translation and reconstruction passes instead of re-encoding (8 encoder-only frames instead of 24), runs the "
    "perceptual loss's VGG once per distinct real frame, and gives each D each real frame once (14 D passes in the D "
    "half instead of 16), all batched into a few calls.",
    "Forward passes are equal (the same forward convolutions in the official and the reference step, flops.json). "
    "The backward passes skip the real frames on both sides: the official code runs the real frame under no_grad (VGG) "
    "or detaches its keys (EXS); ours takes the real frame's VGG features and the EXS keys under no_grad. Before that "
    "change (2026-12-02) our reference step ran each (real, translated) pair through VGG and the encoder in one autograd "
    "call, so its convolution backward also covered the real half (633 against 523 GFLOP a step) and it was slower than "
    "the official step. The fast step's VGG-19 share: 8 translated frames forward + input-gradient backward, 6 distinct "
    "real frames forward.",
    "Work the official step does and ours does not: its D networks are not frozen during the generator half, so "
    "loss_G.backward() also computes D weight gradients (then zeroed); its MLPs require gradients, so their gradients "
    "are computed (then zeroed) and an Adam step on zero gradients runs; the real-triplet INS profiles are computed "
    "with autograd recording (then detached); ours uses no_grad there.",
    "Correctness caveat (timing unaffected): with torch 2.14.1 on the CPU the official step's EXS/INS gradients are "
    "wrong (InstanceNorm2d backward with a batch-1 channels_last incoming gradient, from PatchSampleF's permute).",
    "Absolute times depend on what else runs on the machine (the load average at the start and end is recorded); "
    "the ratios within the run are what count.",
]

if __name__ == "__main__":
    main()
