"""Train a model for hours with a recipe from the search, keeping copies along the way, and score its steps curve.

    OMP_NUM_THREADS=1 python scripts/train_recipe_model.py --recipe sched-const75 --steps 38000          # train (resumes)
    OMP_NUM_THREADS=1 python scripts/train_recipe_model.py --recipe sched-const75 --steps 38000 --curve  # score the kept copies

The recipe is one of `scripts/recipe_search.py`'s candidates (its name, with or without the seed suffix), trained
the way the search trains it: the learning rate is constant for the recipe's share of the budget, then linear to
zero at its end, and a moving average of G_Y and P_Y is kept. Only the budget and the number of training layouts
differ (--steps or --cpu-hours, --n-train: the shipped model has always trained on 96 layouts). A budget in steps
counts steps, as the search does (a busy machine makes a step cost more CPU time, never fewer steps); a budget in
--cpu-hours follows the process CPU clock. Because the schedule is tied to the budget, the budget is part of the
run's name: a run of hours spans several sittings, each recorded in its checkpoint, and another budget is another run.

The run lives outside the repository (--runs/<run name>/): a checkpoint every CPU minute, and an inference copy of
the weights and of their moving average every --keep-minutes of CPU time. `--curve` scores every kept copy on the
evaluation set (32 unseen layouts) into results/recipe-model/<run name>/curve.json, with every sitting, draws
the last copy's moving average on four of its clips (frames.png: infrared, translation, ground truth), and copies the
run's loss log beside them, a row every LOG_EVERY steps (log.jsonl). `--ship`
(a finished run only) writes the package's model, `i2vgan/models/<--name>.pt`: the moving average of G_Y and P_Y in
place of the trained weights (what the recipe translates with), float16 on disk, and its card beside it.
"""
import argparse, importlib.util, json, platform, time
from pathlib import Path
import numpy as np
import torch
import imageio.v3 as iio

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("recipe_search", REPO / "scripts" / "recipe_search.py")
rs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rs)     # the search: its recipes and training loop
from i2vgan.losses import _load_vgg_state                                   # noqa: E402  (the VGG label of copies kept without one)
from i2vgan.cli import _mean_scores as demo_mean, _score as demo_score     # noqa: E402  (the demo's own PSNR/SSIM per clip and mean)
from i2vgan.metrics import _eval_data, eval_set, irvi_clips, score_eval_set     # noqa: E402
from i2vgan.train import MODELS_DIR, load_checkpoint, load_trained, read_log, run_lock, save_checkpoint   # noqa: E402
LOG_EVERY = 200   # steps between the rows of the run's loss log copied beside its curve


def recipe_of(name:str) -> dict:
    "The overrides of a search candidate, by name; a trailing -s<k> is the seed (baseline-s1 is the baseline, seed 1)."
    plans = {n: o for n, o, _ in rs.plan(rs.finished(REPO / "results" / "recipe-search"))}
    if name in plans: return plans[name]
    base, _, seed = name.rpartition("-s")
    if base in plans and seed.isdigit(): return {**plans[base], "seed": int(seed)}
    raise SystemExit(f"--recipe {name!r}: not a candidate of scripts/recipe_search.py (see its --list)")


def run_name(recipe:str, n_train:int, hours:float|None=None, steps:int|None=None) -> str:
    return f"{recipe}-n{n_train}-" + (f"{steps}steps" if steps else f"{hours:g}h")


def keeper(run:Path):
    "A `keep` callback for `recipe_search.train`: the trained weights and their moving average at this CPU time."
    def keep(model, ema, step, used):
        path = run / "kept" / f"cpu_{int(used):06d}.pt"
        save_checkpoint(path, {"config": model.config.to_dict(), "step": step, "cpu_seconds": round(used, 1), "vgg_weights": model.weights_used,
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


def score_demo_clips(model, root) -> dict:
    "The card's PSNR/SSIM on the demo's test clips, per clip and their means: per-frame translation and with predictor fusion."
    per_clip = {"per frame": {}, "predictor fused": {}}
    for name, ir, gt in irvi_clips(root):
        for key, frames in (("per frame", model.translate(ir)), ("predictor fused", model.translate(ir, fuse_predictor=True))):
            per_clip[key][name] = {m: round(v, 4) for m, v in demo_score(frames, gt).items()}
    return {"mean": {k: demo_mean(v) for k, v in per_clip.items()}, "per_clip": per_clip}


def thin_log(run:Path, every:int) -> list:
    "The rows of a run's loss log whose step is a multiple of `every`, one per step (a resumed sitting logs some steps again: the last wins)."
    rows = {r["step"]: r for r in read_log(run)}
    return [rows[k] for k in sorted(rows) if k % every == 0]


def frames_picture(model, root:Path, path:Path, n_clips:int=4, t:int=8):
    "Frame t of the evaluation set's first clips: infrared, translation, ground truth stacked, one column per clip (lossless PNG)."
    cols = [np.concatenate([ir[t], model.translate(ir)[t], gt[t]], axis=0) for _, ir, gt in _eval_data(root)["clips"][:n_clips]]
    path.parent.mkdir(parents=True, exist_ok=True); iio.imwrite(path, np.concatenate(cols, axis=1))


def curve(run:Path, out:Path, budget:dict, rescore:bool=False):
    "Score every kept copy (trained weights and moving average) on the evaluation set; write curve.json (copies scored before are kept)."
    root, points = eval_set(workers=1), []
    before = {(p["step"], p["cpu_seconds"]): p for p in json.loads((out / "curve.json").read_text())["points"]} if (out / "curve.json").exists() and not rescore else {}
    for path in sorted((run / "kept").glob("cpu_*.pt")):
        st = load_checkpoint(path); key = (st["step"], st["cpu_seconds"])
        if key not in before:                                     # build the two models only for a copy not scored before
            _, model, avg = kept_models(path)
            before[key] = dict(step=st["step"], cpu_seconds=st["cpu_seconds"], scores=rs.compact(score_eval_set(model, root)),
                               scores_ema=rs.compact(score_eval_set(avg, root)))
        points.append(before[key])
        m, a = points[-1]["scores"]["mean"]["mIoU"], points[-1]["scores_ema"]["mean"]["mIoU"]
        print(f"{path.name}: step {st['step']}, mIoU {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}], moving average {a['mean']:.3f}", flush=True)
    if points: frames_picture(kept_models(path)[2], root, out / "frames.png")
    (out / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in thin_log(run, LOG_EVERY)))
    state = load_checkpoint(run / "state.pt")
    rs.write_json(out / "curve.json", dict(run=run.name, recipe=json.loads(state["recipe"]), budget=budget, eval_set=rs.EVAL_SET,
                                          sittings=json.loads(state.get("sitting_log", "[]")), machine=rs.machine_info(),
                                          date=time.strftime("%Y-%m-%d"), points=points))


def shipped_config(cfg:dict, steps:int, const_share:float) -> dict:
    "The config a user reads: the run's schedule in the library's own terms (constant, then linear to zero), no moving average left to keep."
    constant = round(steps * const_share)
    return {**cfg, "n_steps": constant, "n_steps_decay": steps - constant, "ema_decay": 0.0}


def ship(run:Path, steps:int, name:str, models:Path, command:str) -> dict:
    "Write models/<name>.pt (config and float16 weights, the moving average as G_Y and P_Y) and its card; return the card."
    state = load_checkpoint(run / "state.pt")
    kept = sorted((run / "kept").glob("cpu_*.pt"))                  # by CPU time: the last is the newest
    st, _, avg = kept_models(kept[-1]) if kept else ({"step": 0}, None, None)
    if st["step"] < steps: raise SystemExit(f"--ship: {run} has not finished its {steps} steps (train it first; it resumes)")
    recipe, sittings = json.loads(state["recipe"]), json.loads(state.get("sitting_log", "[]"))
    models.mkdir(parents=True, exist_ok=True); ckpt = models / f"{name}.pt"
    half = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in avg.state_dict().items()}
    save_checkpoint(ckpt, {"config": shipped_config(st["config"], st["step"], recipe["const_share"]), "model": half})
    shipped = load_trained(ckpt, device="cpu")                  # score what ships, as a user loads it
    world, root = rs.train_world(recipe["n_train"]), eval_set(workers=1)
    demo, ev = score_demo_clips(shipped, world), rs.compact(score_eval_set(shipped, root))
    card = dict(name=name, file=ckpt.name, size_mb=round(ckpt.stat().st_size / 1e6, 2), command=command, run=run.name,
                recipe={k: v for k, v in recipe.items() if k != "seed"}, seed=recipe["seed"],
                translates_with=f"the moving average of G_Y and P_Y (decay {recipe['ema_decay']}, over {st['step']} steps); "
                                "the other networks as trained",
                preset="i2vgan", scale="tiny", precision=" then ".join(dict.fromkeys(x.get("precision", "unrecorded") for x in sittings)),
                frame_size=shipped.config.size, steps=st["step"],
                planned_steps=steps, world={**rs.DEMO_WORLD, "kinds": list(rs.DEMO_WORLD["kinds"]), "n_train": recipe["n_train"], "seed": 0},
                train_seconds=round(sum(x["wall_seconds"] for x in sittings), 1),
                cpu_hours=round(sum(x["cpu_seconds"] for x in sittings) / 3600, 2), sittings=sittings,
                machine=f"{platform.machine()} CPU", machine_info=rs.machine_info(), device="cpu", torch=torch.__version__,
                date=time.strftime("%Y-%m-%d"), weights_on_disk="float16 (loaded into float32)",
                vgg_weights=st.get("vgg_weights") or _load_vgg_state(st["config"]["vgg_weights"], 0)[1],
                test_clips=[n for n in demo["per_clip"]["per frame"]], metrics=demo["mean"], metrics_per_clip=demo["per_clip"],
                eval_set=rs.EVAL_SET, eval_metrics=ev["mean"], eval_per_clip=ev["per_clip"])
    (models / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    m = ev["mean"]["mIoU"]
    print(f"shipped {ckpt}: {st['step']} steps, {card['cpu_hours']} CPU h; eval-set mIoU {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]", flush=True)
    return card


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", required=True, help="a candidate of scripts/recipe_search.py (e.g. baseline-s0)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--steps", type=int, help="the run's whole budget in training steps (fixed when it starts)")
    budget.add_argument("--cpu-hours", type=float, help="the run's whole budget in process CPU hours (fixed when it starts)")
    p.add_argument("--n-train", type=int, default=96, help="training layouts per domain (the shipped model's 96)")
    p.add_argument("--keep-minutes", type=float, default=20.0, help="CPU minutes between kept copies (the steps curve)")
    p.add_argument("--runs", default="/work/runs/recipe-model", help="where runs live (outside the repository)")
    p.add_argument("--curve", action="store_true", help="don't train: score the kept copies on the evaluation set")
    p.add_argument("--rescore", action="store_true", help="--curve: score every kept copy again (by default those in curve.json are kept)")
    p.add_argument("--ship", action="store_true", help="don't train: write the finished run's model into the package, with its card")
    p.add_argument("--name", default="traffic-tiny-64", help="--ship: the shipped model's short name")
    p.add_argument("--models", default=str(MODELS_DIR), help="--ship: where shipped models live (the package's models folder)")
    a = p.parse_args(argv)
    if any(x is not None and x <= 0 for x in (a.cpu_hours, a.steps)) or a.keep_minutes <= 0 or a.n_train < 1:
        p.error("--steps, --cpu-hours, --keep-minutes and --n-train must be positive")
    torch.set_num_threads(1)
    name = run_name(a.recipe, a.n_train, a.cpu_hours, a.steps); run = Path(a.runs) / name
    if (a.curve or a.ship) and not (run / "state.pt").is_file():
        p.error(f"{run}: no run of this recipe and budget to {'score' if a.curve else 'ship'} (train it first)")
    if a.curve: return curve(run, REPO / "results" / "recipe-model" / name, {"steps": a.steps} if a.steps else {"cpu_hours": a.cpu_hours}, a.rescore)
    if a.ship:
        if not a.steps: p.error("--ship: ship a run with a budget in --steps")
        return ship(run, a.steps, a.name, Path(a.models), f"python scripts/train_recipe_model.py --recipe {a.recipe} --steps {a.steps}"
                    + (f" --n-train {a.n_train}" if a.n_train != 96 else ""))
    r = {**rs.recipe(recipe_of(a.recipe)), "n_train": a.n_train}
    run.mkdir(parents=True, exist_ok=True)
    with run_lock(run):
        budget, clock = (a.steps, "steps") if a.steps else (a.cpu_hours * 3600, "cpu")
        model, ema, info = rs.train(name, r, run, budget, log_every=50, keep_cpu=a.keep_minutes * 60, keep=keeper(run), clock=clock)
    print(f"[{name}] {info['steps']} steps in {info['cpu_seconds'] / 3600:.2f} CPU h over {info['sittings']} sittings", flush=True)


if __name__ == "__main__":
    main()
