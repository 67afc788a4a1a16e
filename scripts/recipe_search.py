"""A recipe search at a fixed compute budget: which change to the demo's recipe buys the most eval-set mIoU per CPU minute.

    OMP_NUM_THREADS=1 python scripts/recipe_search.py                  # run every candidate not yet finished (resumes)
    OMP_NUM_THREADS=1 python scripts/recipe_search.py &                # a second worker takes the next candidate
    OMP_NUM_THREADS=1 python scripts/recipe_search.py --list           # the plan, in order, and what is finished
    OMP_NUM_THREADS=1 python scripts/recipe_search.py --summary        # rewrite summary.json / summary.md from the results

Every candidate starts from the demo's recipe as it was before this search (`i2vgan demo`: the `i2vgan` preset at the `tiny` scale, 64-pixel
traffic frames of the built-in world, a 70-pixel PatchGAN, the fast training step on the CPU, half the run at
the full learning rate and half decaying linearly to zero) and changes one lever. All candidates get the same
compute: what --baseline-steps steps of the demo's recipe cost. A dearer step trains fewer steps, in proportion to
its CPU time per step, measured once for every network shape side by side in one process (results/step-costs.json).
A first screen gave every run the same *process CPU time* instead; it is kept in results/recipe-search/round1-cpu-clock/
because it shows why that budget fails: on a busy machine a step costs more CPU time (two cores that are one core's
hyper-threads, shared caches), so identical recipes reached 1,109 steps in one sitting and 1,358 in another. The
learning rate is constant for a share of the run's steps, then linear to zero at its last. An exponential moving average of the translating
networks (G_Y and P_Y) is kept in every run, and both the trained weights and their average are scored, so the
EMA lever is read on every run, clip by clip, for free.

Runs live outside the repository (--runs, default /work/runs/recipe-search/<candidate>/): a checkpoint every
minute of CPU time; started again, the script skips finished candidates and resumes unfinished ones, and a second
process started beside it takes the next candidate that no other holds (two workers for two cores). Each
finished run is scored on the evaluation set (`i2vgan.metrics.score_eval_set`: 32 unseen layouts) and written to
--results/<candidate>.json; summary.json and summary.md are rewritten after every run. The reference rows (the
shipped model, the per-pixel colouriser, the mean frame, the infrared copy, the ground truth) are scored once,
into reference.json.
"""
import argparse, copy, json, os, platform, sys, time
from pathlib import Path
import numpy as np
import torch

from i2vgan.cli import DEMO_WORLD, DEMO_D_LAYERS, DEMO_SHIPPED, paired_lut, mean_visible_frame
from i2vgan.core import I2VGAN, I2VGANConfig
from i2vgan.data import irvi_dataset
from i2vgan.fast import make_trainer
from i2vgan.metrics import EVAL_METRICS, EVAL_SET, eval_set, score_eval_set, paired_difference, mean_interval
from i2vgan.reproduce import machine_info
from i2vgan.train import load_checkpoint, save_checkpoint, run_lock, load_trained
from i2vgan.world import make_world, apply_lut

REPO = Path(__file__).resolve().parent.parent
BASELINE_STEPS = 1100   # the budget: about 7 CPU minutes of the baseline on one thread of this project's 2-core VM
BASE = dict(seed=0, const_share=0.5, batch_size=1, d_lr_factor=1.0, ema_decay=0.995, n_train=DEMO_WORLD["n_train"], model={})   # the demo's recipe before the search
# name, what changes, where the idea comes from; in the order they run (the baseline's two seeds, the levers the first screen
# did not rule out, then those it found worse)
CANDIDATES = [
    ("baseline-s0", {}, "the demo's recipe (`i2vgan demo`)"),
    ("baseline-s1", {"seed": 1}, "the demo's recipe, another seed: how far two seeds of one recipe differ"),
    ("g-deep", {"model": {"n_blocks": 6}}, "generator depth: 6 ResNet blocks (the paper's) against tiny's 3"),
    ("data-64", {"n_train": 64}, "training data: 64 layouts per domain against the demo's 16 (a discriminator that sees few images overfits them and its gradient stops guiding G: Karras et al. 2020, ADA)"),
    ("cyc-2x", {"model": {"lambda_cyc": 20.0, "lambda_rcyc": 20.0}}, "the cycle and recycle weights doubled (λ1 = λ3 = 20): the shipped model's adversarial term holds almost all of G's gradient, and cycle-consistent GANs hide the source in faint patterns (Chu et al. 2017)"),
    ("d-shallow", {"model": {"n_layers_d": 2}}, "discriminator depth: a 34-pixel PatchGAN (2 layers) against the demo's 70-pixel one (Isola et al. 2017 compare patch sizes)"),
    ("sched-const75", {"const_share": 0.75}, "schedule: three quarters of the budget at the full rate, then linear decay (more constant rate read higher from 0 % to 50 % in the first screen)"),
    ("pool-50", {"model": {"pool_size": 50}}, "an image pool of 50 fakes for D (Shrivastava et al. 2017; CycleGAN's default, off in the paper's command)"),
    ("d-wide", {"model": {"ndf": 32}}, "discriminator width: ndf 32 against tiny's 16"),
    ("upsample-transposed", {"model": {"upsample": "transposed"}}, "up-sampling: transposed convolutions (CycleGAN's generator) against the anti-aliased up-steps of the official code (Zhang 2019, as in CUT)"),
    ("batch2", {"batch_size": 2}, "batch size 2 against 1 at the same CPU time, so the same frames per CPU second (the paper trains with batch 1)"),
    ("sched-const0", {"const_share": 0.0}, "schedule: linear decay from the first step (the steps curve rose only while the rate decayed; CycleGAN's constant-then-linear rule, Zhu et al. 2017, with no constant part)"),
    ("sched-const25", {"const_share": 0.25}, "schedule: a quarter of the budget at the full rate, then linear decay (CycleGAN's rule with a shorter constant part)"),
    ("g-wide", {"model": {"ngf": 32}}, "generator width: ngf 32 against tiny's 16 (a wider, deeper generator read higher mIoU on the demo's clips at equal steps)"),
    ("d-lr-half", {"d_lr_factor": 0.5}, "the discriminator's learning rate at half G's (two time-scale update rule, Heusel et al. 2017, there a faster D)"),
    ("d-lr-2x", {"d_lr_factor": 2.0}, "the discriminator's learning rate at twice G's (TTUR, Heusel et al. 2017)"),
]
GROUPS = {"sched-const0": "schedule", "sched-const25": "schedule", "sched-const75": "schedule", "g-wide": "generator", "g-deep": "generator",
          "d-lr-half": "d-lr", "d-lr-2x": "d-lr", "upsample-transposed": "upsample", "d-wide": "discriminator",
          "d-shallow": "discriminator", "batch2": "batch", "data-64": "data", "cyc-2x": "cycle weight", "pool-50": "pool"}
_AHEAD = ("not rerun, to spend the CPU time on untried levers: the first screen (the same CPU time for every run) gave it at "
          "least the steps its measured step cost allows against the baseline, and it still read lower mIoU (results/"
          "recipe-search/round1-cpu-clock/)")
NOT_RERUN = {**{n: _AHEAD for n in ("sched-const0", "sched-const25", "d-lr-half", "d-lr-2x", "upsample-transposed")},
             "g-wide": ("not rerun, for CPU time: the first screen gave it 787 steps where its measured cost allows about 876 against "
                        "the baseline's 1,109, and it read 0.049 lower mIoU, four times the difference between two seeds of the baseline")}
EMA_SOURCE = ("an exponential moving average of G_Y and P_Y (decay 0.995, warmed up as (1+n)/(10+n)) used for translation: "
              "Karras et al. 2018 (ProGAN), Yazıcı et al. 2019")


def recipe(overrides:dict) -> dict:
    "The demo's recipe with a candidate's changes (model fields merged)."
    r = {**BASE, **{k: v for k, v in overrides.items() if k != "model"}}
    r["model"] = {**BASE["model"], **overrides.get("model", {})}
    return r


def model_config(r:dict) -> I2VGANConfig:
    "The model's config: the demo's (`run_demo`), the candidate's model fields, a schedule `train` sets step by step."
    return I2VGANConfig.preset("i2vgan", "tiny", **{"size": DEMO_WORLD["size"], "n_layers_d": DEMO_D_LAYERS, "seed": r["seed"],
                               "n_steps": 10**9, "n_steps_decay": 0, **r["model"]})   # the LambdaLR factor stays 1: lr is set per step


def lr_factor(f:float, const_share:float) -> float:
    "The learning-rate factor at fraction f of the budget (steps or CPU time): 1 up to const_share, then linear to 0 at f = 1."
    if f < const_share: return 1.0
    return max(0.0, (1.0 - f) / max(1e-9, 1.0 - const_share))


class EMA:
    "An exponential moving average of some networks' parameters (buffers copied), warmed up as (1+n)/(10+n)."
    def __init__(self, nets:dict, decay:float):
        self.decay, self.n = decay, 0
        self.shadow = {k: copy.deepcopy(m).eval().requires_grad_(False) for k, m in nets.items()}

    @torch.no_grad()
    def update(self, nets:dict):
        d = min(self.decay, (1 + self.n) / (10 + self.n)); self.n += 1
        for k, m in nets.items():
            for ps, p in zip(self.shadow[k].parameters(), m.parameters()): ps.lerp_(p.detach().float(), 1 - d)
            for bs, b in zip(self.shadow[k].buffers(), m.buffers()): bs.copy_(b)

    def state_dict(self) -> dict: return {"n": self.n, "decay": self.decay, "nets": {k: m.state_dict() for k, m in self.shadow.items()}}
    def load_state_dict(self, st:dict):
        self.n, self.decay = st["n"], st["decay"]
        nets = st.get("nets") or {k: st[k] for k in self.shadow}     # the first runs stored the nets beside n and decay
        for k, m in self.shadow.items(): m.load_state_dict(nets[k])


def translating(model:I2VGAN) -> dict: return {"G_Y": model.G_Y, "P_Y": model.P_Y}


def train_world(n_train:int=DEMO_WORLD["n_train"]) -> Path:
    "The demo's world (seed 0), or one like it with `n_train` layouts per domain: the layouts a candidate learns from."
    name = "demo-world" if n_train == DEMO_WORLD["n_train"] else f"demo-world-n{n_train}"
    return make_world(Path.home() / ".cache" / "i2vgan" / name, seed=0, workers=1, **{**DEMO_WORLD, "n_train": n_train})


def build(r:dict, run:Path, cfg:I2VGANConfig|None=None, log_every:int=50):
    "A recipe's model and fast trainer (on the CPU, checkpoints by hand), on its training world."
    torch.manual_seed(r["seed"])
    cfg = cfg or model_config(r); model = I2VGAN(cfg)
    trainer = make_trainer(model, irvi_dataset(train_world(r["n_train"]), "train", size=cfg.size), run, fast=True, device="cpu",
                           batch_size=r["batch_size"], ckpt_every=0, sample_every=0, log_every=log_every, progress=False)
    return model, trainer


COST_FIELDS = ("ngf", "n_blocks", "upsample", "ndf", "n_layers_d")   # the model fields that change a step's arithmetic

def compute_key(r:dict) -> str:
    "What sets a recipe's step cost: its network shapes and batch size (not its schedule, weights, seed or data)."
    return json.dumps({"batch_size": r["batch_size"], **{k: v for k, v in sorted(r["model"].items()) if k in COST_FIELDS}}, sort_keys=True)


def time_steps(built:dict, rounds:int=3, steps:int=6) -> dict:
    """CPU seconds per training step of each (model, trainer) in `built`, measured in this process, interleaved round
    by round, median of the rounds: a ratio between two of them is then the same on a quiet or a busy machine."""
    feeds = {k: t.batches(0, 10**9) for k, (_, t) in built.items()}
    for k, (_, t) in built.items(): t.train_step(next(feeds[k]))                    # warm-up: first-call costs
    times = {k: [] for k in built}
    for _ in range(rounds):
        for k, (_, t) in built.items():
            c0 = time.process_time()
            for _ in range(steps): t.train_step(next(feeds[k]))
            times[k].append((time.process_time() - c0) / steps)
    for f in feeds.values(): f.close()
    return {k: float(np.median(v)) for k, v in times.items()}


def measure_step_costs(recipes:list, rounds:int=3, steps:int=6) -> dict:
    "CPU seconds per training step of each distinct compute key among `recipes` (`time_steps`)."
    import tempfile
    keys = {compute_key(r): r for r in recipes}
    with tempfile.TemporaryDirectory() as tmp:
        return time_steps({k: build(r, Path(tmp) / str(i)) for i, (k, r) in enumerate(keys.items())}, rounds, steps)


def step_budget(r:dict, costs:dict, baseline_steps:int) -> int:
    "The steps that cost what `baseline_steps` of the demo's recipe cost: equal compute, whatever the machine's load."
    return max(1, round(baseline_steps * costs[compute_key(recipe({}))] / costs[compute_key(r)]))


def precision(trainer) -> str:
    "What the step computes in: the fast step takes bf16 autocast where the CPU has it natively (AVX512-BF16 or AMX-BF16), else float32."
    return "bf16 autocast" if getattr(trainer, "amp", False) else "float32"


def train(name:str, r:dict, run:Path, budget:float, log_every:int=50, ckpt_cpu:float=60.0,
          keep_cpu:float=0.0, keep=None, clock:str="cpu", cfg:I2VGANConfig|None=None):
    """Train one candidate until `budget` (resuming from run/state.pt); returns (model, ema, info).
    clock "steps": the budget and the schedule count training steps (the search, and methods compared at equal
    epochs); "cpu": process CPU seconds (the first screen). Every `keep_cpu` CPU seconds (0: never), `keep(model, ema, step, cpu_seconds)` is
    called (a long run's steps curve). `cfg` replaces the recipe's model config (another method, same recipe)."""
    if clock not in ("cpu", "steps"): raise ValueError(f"clock={clock!r}: expected 'cpu' or 'steps'")
    model, trainer = build(r, run, cfg, log_every)
    cfg = model.config
    ema = EMA(translating(model), r["ema_decay"])
    bases = [cfg.lr, cfg.lr * r["d_lr_factor"], cfg.lr * r["d_lr_factor"]]     # G, D_X, D_Y
    state, used, wall, sittings, log_of_sittings = run / "state.pt", 0.0, 0.0, 0, []
    if state.exists():
        st = load_checkpoint(state)
        trainer.load_state_dict(st["trainer"]); ema.load_state_dict(st["ema"])
        used, wall, sittings = st["cpu_seconds"], st["wall_seconds"], st["sittings"]
        log_of_sittings = json.loads(st.get("sitting_log", "[]"))
        print(f"[{name}] resumed at step {trainer.step}, {used:.0f} CPU s, of {budget:.0f} {'CPU s' if clock == 'cpu' else 'steps'}", flush=True)
    sittings += 1
    sitting = dict(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), threads=torch.get_num_threads(), precision=precision(trainer),
                   start_step=trainer.step, end_step=trainer.step, cpu_seconds=0.0, wall_seconds=0.0)
    spent = (lambda: used) if clock == "cpu" else (lambda: trainer.step)      # what the budget counts
    if spent() < budget: log_of_sittings.append(sitting)       # a finished run started again trains nothing
    def save():
        sitting.update(end_step=trainer.step, cpu_seconds=round(used - start_used, 1), wall_seconds=round(wall - start_wall, 1))
        save_checkpoint(state, {"trainer": trainer.state_dict(), "ema": ema.state_dict(), "cpu_seconds": used,
                                "wall_seconds": wall, "sittings": sittings, "recipe": json.dumps(r),
                                "sitting_log": json.dumps(log_of_sittings)})
    c0, w0, last = time.process_time() - used, time.perf_counter() - wall, used
    start_used, start_wall, next_keep = used, wall, (used // keep_cpu + 1) * keep_cpu if keep_cpu else float("inf")
    batches = trainer.batches(trainer.step, 10**9)
    with open(run / "log.jsonl", "a") as log:
        while True:
            used = time.process_time() - c0
            if spent() >= budget: break
            k = lr_factor(spent() / budget, r["const_share"])
            for o, b in zip(trainer.optimizers, bases):
                for g in o.param_groups: g["lr"] = b * k
            terms = trainer.train_step(next(batches)); ema.update(translating(model))
            if trainer.step % log_every == 0:
                row = {"step": trainer.step, "cpu": round(time.process_time() - c0, 1), "lr": bases[0] * k,
                       **{t: round(float(terms[t]), 4) for t in ("G", "D")}}
                log.write(json.dumps(row) + "\n"); log.flush()
            if used >= next_keep:
                keep(model, ema, trainer.step, used); next_keep += keep_cpu
            if used - last >= ckpt_cpu:
                wall = time.perf_counter() - w0; save(); last = used
                print(f"[{name}] step {trainer.step}, {used:.0f} CPU s ({spent() / budget:.0%} of the budget), lr×{k:.2f}, G {float(terms['G']):.3f}, D {float(terms['D']):.3f}", flush=True)
    batches.close()
    used, wall = (min(used, time.process_time() - c0) if clock == "cpu" else time.process_time() - c0), time.perf_counter() - w0
    save()
    if keep_cpu and spent() >= budget: keep(model, ema, trainer.step, used)
    return model, ema, dict(steps=trainer.step, cpu_seconds=round(used, 1), wall_seconds=round(wall, 1), sittings=sittings,
                            frames_seen=trainer.step * r["batch_size"], sitting_log=log_of_sittings)


def with_ema(model:I2VGAN, ema:EMA):
    "A copy of `model` whose translating networks hold the moving average."
    m = copy.deepcopy(model)
    for k, net in ema.shadow.items(): getattr(m, k).load_state_dict(net.state_dict())
    return m.eval()


def _round(x): return None if x is None else round(float(x), 5)

def compact(score:dict) -> dict:
    "A `score_eval_set` result with numbers rounded for the record."
    return {"clips": score["clips"],
            "per_clip": {c: {k: _round(v) for k, v in row.items()} for c, row in score["per_clip"].items()},
            "mean": {k: {**{q: _round(v[q]) for q in ("mean", "lo", "hi")}, "n": v["n"]} for k, v in score["mean"].items()},
            "pooled": {k: _round(v) for k, v in score["pooled"].items()}}


def write_json(path:Path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp"); tmp.write_text(json.dumps(obj, indent=1) + "\n"); os.replace(tmp, path)


def reference_rows(root:Path) -> dict:
    "The shipped model, the per-pixel colouriser and the mean frame (fitted on the training world), the infrared copy, the ground truth."
    from i2vgan.metrics import _eval_data
    world = train_world(); lut, mean = paired_lut(world), mean_visible_frame(world)
    shipped = load_trained(DEMO_SHIPPED, device="cpu")
    truth = {n: gt for n, _, gt in _eval_data(root)["clips"]}
    methods = {f"{DEMO_SHIPPED} (shipped)": shipped, "per-pixel colouriser": lambda ir: apply_lut(lut, ir),
               "mean visible training frame": lambda ir: np.broadcast_to(mean, ir.shape).copy(),
               "infrared copy": lambda ir: ir, "ground truth": truth}
    return {k: compact(score_eval_set(m, root)) for k, m in methods.items()}


def finished(results:Path) -> dict:
    "{name: record} of the candidates whose results are written."
    return {p.stem: json.loads(p.read_text()) for p in sorted(results.glob("*.json"))
            if p.stem not in ("summary", "reference", "step-costs")}


def rows_of(records:dict) -> list:
    "Summary rows: each finished candidate with its trained weights, and with their moving average."
    rows = []
    for name, rec in records.items():
        for kind, key in (("", "scores"), ("+ema", "scores_ema")):
            rows.append(dict(name=name + kind, candidate=name, ema=bool(kind), score=rec[key], steps=rec["steps"],
                             cpu_seconds=rec["cpu_seconds"], seed=rec["recipe"]["seed"]))
    return rows


def summarise(results:Path) -> dict:
    "Write summary.json and summary.md from the finished records."
    summary = summary_of(finished(results))
    if not summary: return summary
    write_json(results / "summary.json", summary)
    (results / "summary.md").write_text(markdown_table(summary) + "\n")
    return summary


def summary_of(records:dict) -> dict:
    "Every metric's mean and 95 % interval per row (trained weights, and their average), and mIoU clip by clip against baseline-s0."
    if not records: return {}
    budgets = sorted({r["baseline_steps"] for r in records.values()})
    if len(budgets) > 1: raise ValueError(f"the finished runs had different budgets ({budgets} baseline steps): compare runs of one budget")
    budget = budgets[0]
    base = records.get("baseline-s0")
    rows = []
    for r in rows_of(records):
        d = paired_difference(base["scores"], r["score"], "mIoU") if base else None
        rows.append(dict(name=r["name"], candidate=r["candidate"], ema=r["ema"], seed=r["seed"], steps=r["steps"],
                         cpu_seconds=r["cpu_seconds"], mean=r["score"]["mean"], pooled=r["score"]["pooled"],
                         mIoU_vs_baseline_s0=None if d is None else {k: _round(v) if k in ("mean", "lo", "hi") else v for k, v in d.items()}))
    summary = dict(baseline_steps=budget, eval_set=EVAL_SET, metrics=list(EVAL_METRICS), rows=rows,
                   sources={**{n: s for n, _, s in CANDIDATES}, "+ema": EMA_SOURCE},
                   note=(f"Every run costs what {budget:,} steps of the demo's recipe cost (a dearer step gets fewer steps, from step "
                         "costs measured side by side in one process); one torch thread. Decided by eval-set mIoU; every metric reported."))
    return summary


def markdown_table(summary:dict) -> str:
    "The summary as a Markdown table: mean [95 % interval] per metric, and mIoU against baseline-s0 clip by clip."
    fmt = lambda v: "—" if v["mean"] is None else f"{v['mean']:.3f} [{v['lo']:.3f}, {v['hi']:.3f}]"
    head = ["run", "steps", "CPU s"] + list(summary["metrics"]) + ["ΔmIoU vs baseline-s0 (clips better)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rows"]:
        d = r["mIoU_vs_baseline_s0"]
        dd = "—" if d is None or d["mean"] is None else f"{d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] ({d['better']}/{d['n']})"
        lines.append("| " + " | ".join([r["name"], str(r["steps"]), f"{r['cpu_seconds']:.0f}"] +
                                        [fmt(r["mean"][m]) for m in summary["metrics"]] + [dd]) + " |")
    return "\n".join([f"Recipe search: {summary['note']}", ""] + lines)


def together(records:dict) -> dict|None:
    "The best lever of each group whose mean mIoU beats baseline-s0 clip by clip, combined; None before every lever ran or if none beats it."
    base = records.get("baseline-s0")
    if base is None or any(n not in records for n in GROUPS if n not in NOT_RERUN): return None
    best = {}
    for n, g in GROUPS.items():
        if n not in records: continue
        d = paired_difference(base["scores"], records[n]["scores"], "mIoU")["mean"]
        if d is not None and d > 0 and (g not in best or d > best[g][1]): best[g] = (n, d)
    if not best: return None
    over = {n: o for n, o, _ in CANDIDATES}
    combo = {"model": {}}
    for n, _ in best.values():
        o = over[n]; combo["model"].update(o.get("model", {})); combo.update({k: v for k, v in o.items() if k != "model"})
    return dict(name="together-s0", overrides=combo, levers=[n for n, _ in best.values()],
                source="the levers that beat baseline-s0 alone, together: " + ", ".join(n for n, _ in best.values()))


def plan(records:dict) -> list:
    "(name, overrides, source) of every candidate in order: the fixed ones, then the combination and second seeds when their inputs exist."
    out = [c for c in CANDIDATES if c[0] not in NOT_RERUN]
    t = together(records)
    second = lambda names: [(f"{n}-s1", {**dict((c[0], c[1]) for c in CANDIDATES)[n], "seed": 1}, f"{n}, another seed") for n in names]
    if t and len(t["levers"]) > 1:            # the combination, with two seeds: what would be adopted
        out.append((t["name"], t["overrides"], t["source"]))
        out.append(("together-s1", {**t["overrides"], "seed": 1}, "the combination, another seed"))
        combo = records.get("together-s0")
        if combo and paired_difference(records["baseline-s0"]["scores"], combo["scores"], "mIoU")["lo"] <= 0:
            base = records["baseline-s0"]["scores"]   # the combination does not beat the baseline: the two best levers alone, seed 1
            out += second(sorted(t["levers"], key=lambda n: -paired_difference(base, records[n]["scores"], "mIoU")["mean"])[:2])
    elif t:                                   # one lever beat the baseline: its second seed
        out += second(t["levers"])
    return out


def step_costs(results:Path, recipes:list) -> dict:
    "The measured CPU seconds per step of every compute key in `recipes` (results/step-costs.json, measured once per key)."
    path = results / "step-costs.json"
    st = json.loads(path.read_text()) if path.exists() else {"costs": {}, "measured": []}
    base = recipe({}); missing = [r for r in recipes if compute_key(r) not in st["costs"]]
    if missing:
        t0 = time.process_time(); new = measure_step_costs([base] + missing)
        scale = st["costs"].get(compute_key(base), new[compute_key(base)]) / new[compute_key(base)]   # keep earlier keys' scale
        st["costs"].update({k: round(v * scale, 5) for k, v in new.items() if k not in st["costs"]})
        st["measured"].append(dict(keys=list(new), date=time.strftime("%Y-%m-%d"), machine=machine_info(),
                                   cpu_seconds=round(time.process_time() - t0, 1)))
        write_json(path, st)
    return st["costs"]


_CLAIMED = []   # the locks this process holds (a lock whose context manager is collected is released)

def claim(run:Path) -> bool:
    "Take a candidate's run folder for this process until it exits (False: another worker holds it)."
    lock = run_lock(run)
    try: lock.__enter__()
    except FileExistsError: return False
    _CLAIMED.append(lock); return True


def family(name:str) -> tuple:
    "(recipe, seed) of a candidate's name: baseline-s1 → (baseline, 1), g-deep → (g-deep, 0), g-deep-s1 → (g-deep, 1)."
    base, _, k = name.rpartition("-s")
    return (base, int(k)) if base and k.isdigit() else (name, 0)


def chosen(records:dict) -> dict|None:
    """The search's choice. A recipe with two finished seeds replaces the baseline only if it reads higher mIoU clip by
    clip than the baseline of the same seed, with the 95 % interval above zero, on both seeds; of those, the highest mean.
    Its moving average is used where it reads higher than the trained weights in every run of the recipe.
    None until the baseline has two seeds."""
    seeds = {}
    for n, rec in records.items():
        f, k = family(n); seeds.setdefault(f, {})[k] = rec
    if set(seeds.get("baseline", {})) < {0, 1}: return None
    base, out = seeds["baseline"], {}
    for f, runs in seeds.items():
        if set(runs) < {0, 1}: continue
        d = {k: paired_difference(base[k]["scores"], runs[k]["scores"], "mIoU") for k in (0, 1)}
        ema = all(paired_difference(r["scores"], r["scores_ema"], "mIoU")["lo"] > 0 for r in runs.values())
        key = "scores_ema" if ema else "scores"
        out[f] = dict(recipe=f, ema=ema, vs_baseline=d, mIoU=float(np.mean([runs[k][key]["mean"]["mIoU"]["mean"] for k in (0, 1)])),
                      beats_baseline=f != "baseline" and all(v["lo"] > 0 for v in d.values()))
    winners = [v for v in out.values() if v["beats_baseline"]]
    pick = max(winners, key=lambda v: v["mIoU"]) if winners else out["baseline"]
    return dict(pick, overrides=next(o for n, o, _ in plan(records) if family(n)[0] == pick["recipe"] and family(n)[1] == 0)
                | {"seed": 0}, compared=out)


def run_candidate(name, overrides, source, a, root, costs) -> dict:
    "Train (or resume) one candidate, score it on the evaluation set, write its record."
    r = recipe(overrides); run = Path(a.runs) / name
    n = step_budget(r, costs, a.baseline_steps)
    with run_lock(run):
        t0 = time.perf_counter()
        print(f"[{name}] {source}; recipe {json.dumps(r)}; {n} steps", flush=True)
        model, ema, info = train(name, r, run, n, clock="steps")
        model.eval(); c0 = time.process_time()
        scores = compact(score_eval_set(model, root)); scores_ema = compact(score_eval_set(with_ema(model, ema), root))
        rec = dict(name=name, source=source, recipe=r, config=model.config.to_dict(), baseline_steps=a.baseline_steps,
                   budget_steps=n, step_cost_ratio=round(costs[compute_key(r)] / costs[compute_key(recipe({}))], 4),
                   schedule=f"lr × 1 for the first {r['const_share']:.0%} of {n} steps, then linear to 0 at the last",
                   **info, score_cpu_seconds=round(time.process_time() - c0, 1), torch_threads=torch.get_num_threads(),
                   machine=machine_info(), date=time.strftime("%Y-%m-%d"), vgg_weights=model.weights_used,
                   scores=scores, scores_ema=scores_ema)
        write_json(Path(a.results) / f"{name}.json", rec)
        (run / "done").write_text(time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        m, me = scores["mean"]["mIoU"], scores_ema["mean"]["mIoU"]
        print(f"[{name}] done: {info['steps']} steps in {info['cpu_seconds']:.0f} CPU s ({time.perf_counter() - t0:.0f} s wall); "
              f"eval mIoU {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}], with EMA {me['mean']:.3f}", flush=True)
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline-steps", type=int, default=BASELINE_STEPS, help="the budget: the demo recipe's steps; a dearer step gets fewer (the same compute)")
    p.add_argument("--runs", default="/work/runs/recipe-search", help="where runs and their checkpoints live (outside the repository)")
    p.add_argument("--results", default=str(REPO / "results" / "recipe-search"), help="where records and the summary go")
    p.add_argument("--only", nargs="*", help="run only these candidates (names from --list)")
    p.add_argument("--list", action="store_true", help="print the plan and what is finished, then stop")
    p.add_argument("--summary", action="store_true", help="only rewrite summary.json and summary.md")
    a = p.parse_args(argv)
    if a.baseline_steps < 1: p.error(f"--baseline-steps {a.baseline_steps}: expected a whole number ≥ 1")
    torch.set_num_threads(1)
    results = Path(a.results); results.mkdir(parents=True, exist_ok=True)
    if a.summary: summarise(results); return
    if a.list:
        done = finished(results)
        for n, o, s in plan(done): print(f"{'done' if n in done else 'todo':4s}  {n:20s} {json.dumps(o):45s} {s}")
        return
    root = eval_set(workers=1)
    if not (results / "reference.json").exists():
        t0 = time.process_time(); ref = reference_rows(root)
        write_json(results / "reference.json", dict(eval_set=EVAL_SET, machine=machine_info(), date=time.strftime("%Y-%m-%d"),
                                                    cpu_seconds=round(time.process_time() - t0, 1), rows=ref))
        print(f"reference rows scored: " + ", ".join(f"{k} mIoU {v['mean']['mIoU']['mean']:.3f}" for k, v in ref.items()), flush=True)
    while True:                               # several workers may run at once: each takes the next candidate no other holds
        done = finished(results)
        todo = [c for c in plan(done) if c[0] not in done and (not a.only or c[0] in a.only)]
        costs = step_costs(results, [recipe(o) for _, o, _ in todo])
        mine = next((c for c in todo if claim(Path(a.runs) / c[0])), None)
        if mine is None and not todo: break
        if mine is None: time.sleep(30); continue      # other workers hold the rest: their results may add finalists
        run_candidate(*mine, a, root, costs)
        summarise(results)
    summarise(results)
    print("every candidate in the plan is finished", flush=True)


if __name__ == "__main__":
    main()
