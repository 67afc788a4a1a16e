"""Train a model for hours with a recipe from the search, keeping copies along the way, and score its steps curve.

    OMP_NUM_THREADS=1 python scripts/train_recipe_model.py --recipe baseline-s0 --cpu-hours 4     # train (resumes)
    OMP_NUM_THREADS=1 python scripts/train_recipe_model.py --recipe baseline-s0 --cpu-hours 4 --curve   # score the kept copies

The recipe is one of `scripts/recipe_search.py`'s candidates (its name, with or without the seed suffix), trained
the way the search trains it: the learning rate follows the process CPU clock (constant for the recipe's share of
the budget, then linear to zero at its end) and a moving average of G_Y and P_Y is kept. Only the budget and the
number of training layouts differ (--cpu-hours, --n-train: the shipped model has always trained on 96 layouts).
Because the schedule is tied to the budget, the budget is part of the run's name: a run of hours spans several
sittings, each recorded in its checkpoint, and another budget is another run.

The run lives outside the repository (--runs/<run name>/): a checkpoint every CPU minute, and an inference copy of
the weights and of their moving average every --keep-minutes of CPU time. `--curve` scores every kept copy on the
evaluation set (32 unseen layouts) into results/recipe-model/<run name>/curve.json, with every sitting.
"""
import argparse, importlib.util, json, sys, time
from pathlib import Path
import torch

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("recipe_search", REPO / "scripts" / "recipe_search.py")
rs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rs)     # the search: its recipes and training loop
from i2vgan.metrics import eval_set, score_eval_set                         # noqa: E402
from i2vgan.train import load_checkpoint, load_trained, run_lock, save_checkpoint   # noqa: E402


def recipe_of(name:str) -> dict:
    "The overrides of a search candidate, by name; a trailing -s<k> is the seed (baseline-s1 is the baseline, seed 1)."
    plans = {n: o for n, o, _ in rs.plan(rs.finished(REPO / "results" / "recipe-search"))}
    if name in plans: return plans[name]
    base, _, seed = name.rpartition("-s")
    if base in plans and seed.isdigit(): return {**plans[base], "seed": int(seed)}
    raise SystemExit(f"--recipe {name!r}: not a candidate of scripts/recipe_search.py (see its --list)")


def run_name(recipe:str, n_train:int, hours:float) -> str: return f"{recipe}-n{n_train}-{hours:g}h"


def keeper(run:Path):
    "A `keep` callback for `recipe_search.train`: the trained weights and their moving average at this CPU time."
    def keep(model, ema, step, used):
        path = run / "kept" / f"cpu_{int(used):06d}.pt"
        save_checkpoint(path, {"config": model.config.to_dict(), "step": step, "cpu_seconds": round(used, 1),
                               "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
                               "ema": {k: m.state_dict() for k, m in ema.shadow.items()}})
        print(f"kept {path.name}: step {step}", flush=True)
    return keep


def kept_models(path:Path):
    "(record, trained, averaged) of one kept copy: `load_trained` reads its config and weights, the average goes into a second copy."
    st = load_checkpoint(path)
    model, avg = load_trained(path, device="cpu"), load_trained(path, device="cpu")
    for k, sd in st["ema"].items(): getattr(avg, k).load_state_dict(sd)
    return st, model, avg


def curve(run:Path, out:Path):
    "Score every kept copy (trained weights and moving average) on the evaluation set; write curve.json."
    root, points = eval_set(workers=1), []
    for path in sorted((run / "kept").glob("cpu_*.pt")):
        st, model, avg = kept_models(path)
        points.append(dict(step=st["step"], cpu_seconds=st["cpu_seconds"], scores=rs.compact(score_eval_set(model, root)),
                           scores_ema=rs.compact(score_eval_set(avg, root))))
        m, a = points[-1]["scores"]["mean"]["mIoU"], points[-1]["scores_ema"]["mean"]["mIoU"]
        print(f"{path.name}: step {st['step']}, mIoU {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}], moving average {a['mean']:.3f}", flush=True)
    state = load_checkpoint(run / "state.pt")
    rs.write_json(out / "curve.json", dict(run=run.name, recipe=json.loads(state["recipe"]), eval_set=rs.EVAL_SET,
                                          sittings=json.loads(state.get("sitting_log", "[]")), machine=rs.machine_info(),
                                          date=time.strftime("%Y-%m-%d"), points=points))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="a candidate of scripts/recipe_search.py (e.g. baseline-s0)")
    p.add_argument("--cpu-hours", type=float, required=True, help="the run's whole CPU budget (fixed when it starts)")
    p.add_argument("--n-train", type=int, default=96, help="training layouts per domain (the shipped model's 96)")
    p.add_argument("--keep-minutes", type=float, default=30.0, help="CPU minutes between kept copies (the steps curve)")
    p.add_argument("--runs", default="/work/runs/recipe-model", help="where runs live (outside the repository)")
    p.add_argument("--curve", action="store_true", help="don't train: score the kept copies on the evaluation set")
    a = p.parse_args(argv)
    if a.cpu_hours <= 0 or a.keep_minutes <= 0 or a.n_train < 1: p.error("--cpu-hours, --keep-minutes and --n-train must be positive")
    torch.set_num_threads(1)
    name = run_name(a.recipe, a.n_train, a.cpu_hours); run = Path(a.runs) / name; run.mkdir(parents=True, exist_ok=True)
    if a.curve: return curve(run, REPO / "results" / "recipe-model" / name)
    r = {**rs.recipe(recipe_of(a.recipe)), "n_train": a.n_train}
    with run_lock(run):
        model, ema, info = rs.train(name, r, run, a.cpu_hours * 3600, log_every=50, keep_cpu=a.keep_minutes * 60, keep=keeper(run))
    print(f"[{name}] {info['steps']} steps in {info['cpu_seconds'] / 3600:.2f} CPU h over {info['sittings']} sittings", flush=True)


if __name__ == "__main__":
    main()
