"""The official I2V-GAN training step against ours, on the CPU, in one process.

    python scripts/peer_bench.py --official /path/to/I2V-GAN [--size 128 --ngf 16 --steps 5 --warmup 2 --threads 1]

`--official` is a checkout of https://github.com/BIT-DA/I2V-GAN (not part of this repository). The script builds its
model with the options of its README's training command (only the frame size and ngf changed; CPU, batch 1, no
visdom/html), times `optimize_parameters()`, then our reference step (`Trainer`, preset `i2vgan-official`), our fast
step (`FastTrainer`) in float32 and, on a CPU with native bf16, in bf16 autocast. The rows are timed in turn, one
step each per round (the order rotating every round), so that a change of load on a shared machine hits all of them.
It prints a table and writes results/peer-bench/peer.json.
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
    ap.add_argument("--out", type=Path, default=None, help="default: results/peer-bench/peer.json (flops.json with --flops)")
    ap.add_argument("--flops", action="store_true", help="count the FLOPs of one step of each row instead of timing")
    a = ap.parse_args(argv)
    a.out = a.out or REPO / "results" / "peer-bench" / ("flops.json" if a.flops else "peer.json")
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
    names, times = list(rows), {n: [] for n in rows}
    t_start = time.perf_counter()
    for r in range(a.warmup + a.steps):
        order, last = names[r % len(names):] + names[:r % len(names)], {}    # rotate who goes first
        for n in order:
            t0 = time.perf_counter(); step(n, r); last[n] = time.perf_counter() - t0
            if r >= a.warmup: times[n].append(last[n])
        print(f"round {r + 1}/{a.warmup + a.steps}{' (warm-up)' if r < a.warmup else ''}: "
              + ", ".join(f"{n} {last[n]:.2f} s" for n in names), file=sys.stderr, flush=True)
    wall = time.perf_counter() - t_start
    params = param_counts(official, next(t for n, t in trainers.items() if "reference" in n).model)
    tmp.cleanup()

    ref = statistics.median(times[names[0]])
    table = [{"row": n, "s/step": statistics.median(times[n]), "steps/s": 1 / statistics.median(times[n]),
              "× official": ref / statistics.median(times[n]), "times": times[n]} for n in names]
    print(f"{machine_info()['cpu']}, torch {torch.__version__}, {a.threads} thread(s), {a.size}×{a.size}, ngf {a.ngf}, batch 1, "
          f"{a.warmup} warm-up + {a.steps} timed steps per row (median)")
    print("| row | s/step | steps/s | × official |\n|---|---|---|---|")
    for t in table: print(f"| {t['row']} | {t['s/step']:.2f} | {t['steps/s']:.3f} | {t['× official']:.2f} |")

    res = {"date": datetime.date.today().isoformat(), "machine": f"{machine_info()['cpu']}, {os.cpu_count()} CPUs",
           "torch": torch.__version__, "threads": a.threads, "native bf16": bf16,
           "settings": {"size": a.size, "ngf": a.ngf, "batch": 1, "warmup": a.warmup, "steps": a.steps,
                        "timer": "time.perf_counter per step, rows interleaved (one step each per round, order rotating)",
                        "official command": "python train.py " + " ".join(README_COMMAND) + f" --fineSize {a.size} --loadSize {a.size} --ngf {a.ngf} --gpu_ids -1 --no_html --display_id 0",
                        "official": official_settings(official, opt),
                        "ours": {k: v for k, v in cfg.to_dict().items() if k in (
                            "name", "size", "ngf", "npf", "unet_downs", "n_blocks", "ndf", "n_layers_d", "use_identity",
                            "d_sees_predictions", "perceptual_form", "vgg_layers", "vgg_weights", "nce_layers", "nce_after_relu",
                            "num_patches", "mlp_units", "train_mlp", "pool_size", "lambda_exs", "lambda_ins")}},
           "parameters (official name: official, ours)": params,
           "wall seconds": wall,
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
           "notes": ["FLOPs of convolutions and matrix products (forward and backward), as FlopCounterMode counts them.",
                     "VGG-19 is run up to relu5_1 (the official form's five Gram layers). A translated frame costs a forward "
                     "and an input-gradient backward (its weights are frozen), about twice a forward; a real frame a forward.",
                     "The official step and our reference step run VGG on 8 translated and 8 real frames; ours runs each "
                     "batched pair (real, translated) through one autograd call, so its backward also covers the real half."]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {a.out}")


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
    "Forward passes are equal (269 GFLOP of forward convolutions in both official and reference steps, flops.json), "
    "but our reference step does more backward work (633 against 523 GFLOP a step): PerceptualLoss runs VGG on "
    "cat([real, translated]) and external_similarity_loss the encoder on cat([real, translated]) in one autograd call each, "
    "so the convolution backward also runs over the real half (whose gradient is zero). The official code runs the real "
    "frame under no_grad (VGG) or detaches its keys (EXS) in separate calls. This is why the reference step is slower "
    "than the official one although it runs the same passes. The fast step does 459 GFLOP, of which about 260 are "
    "VGG-19 (8 translated frames forward + input-gradient backward, 6 distinct real frames forward, 11.8 GFLOP a forward).",
    "Work the official step does and ours does not: its D networks are not frozen during the generator half, so "
    "loss_G.backward() also computes D weight gradients (then zeroed); its MLPs require gradients, so their gradients "
    "are computed (then zeroed) and an Adam step on zero gradients runs; the real-triplet INS profiles are computed "
    "with autograd recording (then detached); ours uses no_grad there.",
    "Correctness caveat (timing unaffected): with torch 2.14.1 on the CPU the official step's EXS/INS gradients are "
    "wrong (InstanceNorm2d backward with a batch-1 channels_last incoming gradient, from PatchSampleF's permute).",
    "Absolute times were taken while another long training run used the 2-core machine; the ratios within the run "
    "are what count.",
]

if __name__ == "__main__":
    main()
