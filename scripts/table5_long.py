"""Table 5's methods trained long enough to differ: every (method, seed) with one recipe, scored clip by clip on the evaluation set.

    OMP_NUM_THREADS=1 python scripts/table5_long.py --recipe baseline --steps 6000              # every run not finished (resumes)
    OMP_NUM_THREADS=1 python scripts/table5_long.py --recipe baseline --steps 6000 --worker 1/2 # one of two workers (two cores)
    python scripts/table5_long.py --list                                                          # the plan and what is finished

Workers skip a run another worker holds (each claims a run just before training it), so a second worker started
beside a running one, with any --worker, takes the next free run instead of failing.

Every method (`i2vgan.reproduce.ROWS`: Cycle-GAN, Recycle-GAN, I2V-GAN, I2V-GAN with the official code's losses,
then the one-loss ablations) trains with the same recipe from `scripts/recipe_search.py` (its learning-rate shape,
moving average, discriminator, data), for the same number of steps: the paper compares methods at equal epochs, so
the schedule counts steps here, not CPU seconds. One more row, last, gives Cycle-GAN the CPU time of I2V-GAN's
steps instead (from every method's step cost, measured once: results/table5-long/step-costs.json). Each run's CPU time is recorded, so a step's cost per method can
be read. Runs live outside the repository (--runs/<method>/seed<k>/, a checkpoint every CPU minute) and resume
when started again; a finished run is scored on the evaluation set (32 unseen layouts: PSNR, SSIM, pixel accuracy,
mIoU, vehicle IoU, E_warp, tOF, per clip) with the weights the recipe translates with, and writes
results/table5-long/<method>/seed<k>/scores.json, its loss log and its translation of the set's first clip as a
strip of frames (strip-<clip>.png; the clip's infrared and ground truth are written once, as clip-<clip>.png).
"""
import argparse, importlib.util, json, time
from pathlib import Path
import numpy as np
import torch
import imageio.v3 as iio

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("recipe_search", REPO / "scripts" / "recipe_search.py")
rs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rs)     # the search: its recipes and training loop
from i2vgan.cli import DEMO_D_LAYERS, DEMO_WORLD                             # noqa: E402
from i2vgan.metrics import EVAL_SET, eval_set, score_eval_set, _eval_data   # noqa: E402
from i2vgan.reproduce import ABLATIONS, EQUAL_CPU, LONG_SEEDS, MAIN_ROWS, ROWS, row_config   # noqa: E402
from i2vgan.train import run_lock                                            # noqa: E402


def plan() -> list:
    """(method, seed) in the order they run: the methods seed by seed, then the ablations, then Cycle-GAN at I2V-GAN's
    CPU time, so that an early stop leaves whole seeds, and the rows the budget must cover (the methods) come first."""
    return [(m, s) for rows in (MAIN_ROWS, ABLATIONS, (EQUAL_CPU,)) for s in range(max(LONG_SEEDS.values())) for m in rows if s < LONG_SEEDS[m]]


def step_costs(results:Path, r:dict, steps:int) -> dict:
    """Every method's CPU seconds per step (one thread), all measured in one process, interleaved: the ratios hold on
    a busy machine. Measured once, kept in results/table5-long/step-costs.json."""
    import tempfile
    path, recipe = results / "step-costs.json", {k: v for k, v in r.items() if k != "seed"}
    if path.exists() and (st := json.loads(path.read_text())).get("recipe") == recipe: return st["costs"]   # another recipe: measure again
    with tempfile.TemporaryDirectory() as tmp:
        built = {m: rs.build({**r, "seed": 0}, Path(tmp) / m, cfg=config(m, 0, r, steps)) for m in (*MAIN_ROWS, *ABLATIONS)}
        c0 = time.process_time(); costs = {m: round(c, 5) for m, c in rs.time_steps(built).items()}
        precision = rs.precision(next(iter(built.values()))[1])
    rs.write_json(path, dict(costs=costs, recipe=recipe, threads=torch.get_num_threads(), precision=precision, date=time.strftime("%Y-%m-%d"),
                             machine=rs.machine_info(), cpu_seconds=round(time.process_time() - c0, 1)))
    return costs


def steps_of(method:str, steps:int, costs:dict|None=None) -> int:
    "The run's steps: `steps` for every method; for Cycle-GAN at I2V-GAN's CPU time, what I2V-GAN's steps cost (to the hundred)."
    if method != EQUAL_CPU: return steps
    return int(round(steps * costs["i2vgan"] / costs["cycle-gan"], -2))


def config(method:str, seed:int, r:dict, steps:int):
    "The method's config with the recipe's model changes, the demo's sizes and `steps` (the schedule is set per step)."
    model = dict(r["model"]); n_layers_d = model.pop("n_layers_d", DEMO_D_LAYERS)
    return row_config(method, seed, steps, "tiny", DEMO_WORLD["size"], n_layers_d, **model)


def strip(*clips:np.ndarray, every:int=1) -> np.ndarray:
    """Every `every`-th frame of each clip side by side, one row per clip, as one image: lossless as PNG, so that 08
    redraws its grid, difference maps, x–t slices and flicker figure from it."""
    return np.concatenate([np.concatenate(list(c[::every]), axis=1) for c in clips], axis=0)


def my_jobs(jobs:list, k:int, n:int, done, claim):
    "This worker's share of the plan (every n-th job from the k-th), in order, skipping finished runs and runs another worker holds."
    for m, s in jobs[k - 1::n]:
        if not done(m, s) and claim(m, s): yield m, s      # claimed just before it trains: workers can take each other's share


def run(method:str, seed:int, a, r:dict, root:Path, costs:dict) -> dict:
    "Train (or resume) one (method, seed), score it on the evaluation set, write its record, log and strip."
    out, rundir = Path(a.results) / method / f"seed{seed}", Path(a.runs) / method / f"seed{seed}"
    rundir.mkdir(parents=True, exist_ok=True)
    with run_lock(rundir):
        rr, steps = {**r, "seed": seed}, steps_of(method, a.steps, costs)
        cfg = config("cycle-gan" if method == EQUAL_CPU else method, seed, rr, steps)
        model, ema, info = rs.train(f"{method}/seed{seed}", rr, rundir, steps, clock="steps", cfg=cfg)
        model.eval(); translate = rs.with_ema(model, ema) if a.ema else model
        c0 = time.process_time(); scores = rs.compact(score_eval_set(translate, root))
        name, ir, gt = _eval_data(root)["clips"][0]
        out.mkdir(parents=True, exist_ok=True)
        iio.imwrite(out / f"strip-{name}.png", strip(translate.translate(ir)))       # the translation; its input and truth once:
        if not (shared := Path(a.results) / f"clip-{name}.png").exists(): iio.imwrite(shared, strip(ir, gt))
        (out / "log.jsonl").write_text((rundir / "log.jsonl").read_text())
        rec = dict(method=method, seed=seed, steps=info["steps"], recipe=rr, translated_with="moving average" if a.ema else "trained weights",
                   schedule=f"lr × 1 for the first {rr['const_share']:.0%} of {steps} steps, then linear to 0", config=model.config.to_dict(),
                   precision=" then ".join(dict.fromkeys(x.get("precision", "unrecorded") for x in info["sitting_log"])),
                   cpu_seconds=info["cpu_seconds"], cpu_seconds_per_step=round(info["cpu_seconds"] / max(1, info["steps"]), 4),
                   wall_seconds=info["wall_seconds"], sittings=info["sitting_log"], score_cpu_seconds=round(time.process_time() - c0, 1),
                   torch_threads=torch.get_num_threads(), machine=rs.machine_info(), date=time.strftime("%Y-%m-%d"),
                   vgg_weights=model.weights_used, eval_set=EVAL_SET, **scores)
        rs.write_json(out / "scores.json", rec)
        m = scores["mean"]["mIoU"]
        print(f"[{method}/seed{seed}] done: {info['steps']} steps, {info['cpu_seconds'] / 60:.0f} CPU min; mIoU {m['mean']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]", flush=True)
    return rec


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipe", default="baseline-s0", help="a candidate of scripts/recipe_search.py; its seed is replaced by each run's")
    p.add_argument("--steps", type=int, default=6000, help="training steps of every run (equal epochs for every method)")
    p.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True, help="translate with the moving average of G_Y and P_Y")
    p.add_argument("--worker", default="1/1", help="k/n: run every n-th job of the plan, starting at the k-th (two workers on two cores)")
    p.add_argument("--only", nargs="*", help="run only these methods")
    p.add_argument("--seeds", nargs="*", type=int, help="run only these seeds")
    p.add_argument("--runs", default="/work/runs/table5-long", help="where runs and checkpoints live (outside the repository)")
    p.add_argument("--results", default=str(REPO / "results" / "table5-long"))
    p.add_argument("--list", action="store_true", help="print the plan and what is finished, then stop")
    a = p.parse_args(argv)
    k, _, n = a.worker.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)): p.error(f"--worker {a.worker!r}: expected k/n with 1 ≤ k ≤ n")
    if a.steps < 1: p.error(f"--steps {a.steps}: expected a whole number ≥ 1")
    if a.only and (bad := set(a.only) - set(LONG_SEEDS)): p.error(f"--only {sorted(bad)}: expected methods among {list(LONG_SEEDS)}")
    jobs = [j for j in plan() if (not a.only or j[0] in a.only) and (a.seeds is None or j[1] in a.seeds)]
    done = lambda m, s: (Path(a.results) / m / f"seed{s}" / "scores.json").exists()
    if a.list:
        for m, s in jobs: print(f"{'done' if done(m, s) else 'todo'}  {m:16s} seed{s}")
        return
    from train_recipe_model import recipe_of                                    # noqa: E402  (a sibling script)
    torch.set_num_threads(1)
    r, root = rs.recipe(recipe_of(a.recipe)), eval_set(workers=1)
    costs = step_costs(Path(a.results), r, a.steps)
    for m, s in my_jobs(jobs, int(k), int(n), done, lambda m, s: rs.claim(Path(a.runs) / m / f"seed{s}")):
        run(m, s, a, r, root, costs)


if __name__ == "__main__":
    import sys; sys.path.insert(0, str(REPO / "scripts"))
    main()
