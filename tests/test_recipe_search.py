"scripts/recipe_search.py (its schedule, step budgets, the moving average, recipes, the plan, the summary, the choice) and the scripts built on it (no training)."
import copy, importlib.util, json
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn as nn

from i2vgan.metrics import EVAL_METRICS, mean_interval

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("recipe_search", ROOT / "scripts" / "recipe_search.py")
rs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rs)


def test_lr_factor_follows_the_budget():
    assert rs.lr_factor(0.0, 0.5) == 1.0 and rs.lr_factor(0.49, 0.5) == 1.0
    assert rs.lr_factor(0.75, 0.5) == pytest.approx(0.5) and rs.lr_factor(1.0, 0.5) == 0.0 and rs.lr_factor(1.2, 0.5) == 0.0
    assert rs.lr_factor(0.0, 0.0) == 1.0 and rs.lr_factor(0.25, 0.0) == pytest.approx(0.75)   # pure decay
    f = [rs.lr_factor(x, 0.25) for x in np.linspace(0, 1, 41)]
    assert all(a >= b for a, b in zip(f, f[1:])) and f[-1] == 0.0                           # every run completes its decay


def test_recipe_keeps_the_demo_and_merges_model_fields():
    r = rs.recipe({"model": {"ngf": 32}, "seed": 1})
    assert r["seed"] == 1 and r["model"] == {"ngf": 32} and r["const_share"] == rs.BASE["const_share"]
    assert rs.BASE["model"] == {}                                                               # not mutated
    c = rs.model_config(r)
    assert (c.ngf, c.size, c.n_layers_d, c.seed, c.n_blocks) == (32, 64, 3, 1, 3)
    assert rs.model_config(rs.recipe({})).to_dict() == {**rs.model_config(rs.BASE).to_dict()}
    names = [n for n, _, _ in rs.CANDIDATES]
    assert names[:2] == ["baseline-s0", "baseline-s1"] and len(set(names)) == len(names) and set(rs.GROUPS) <= set(names)


def test_ema_averages_parameters():
    torch.manual_seed(0)
    net = nn.Linear(3, 2); start = copy.deepcopy(net.state_dict())
    ema = rs.EMA({"n": net}, decay=0.9)
    with torch.no_grad(): net.weight.add_(1.0)
    ema.update({"n": net})                            # first update: d = min(0.9, 1/10) = 0.1
    expect = 0.1 * start["weight"] + 0.9 * net.weight.detach()
    torch.testing.assert_close(ema.shadow["n"].weight, expect)
    for _ in range(200): ema.update({"n": net})       # a constant net: the average converges to it
    torch.testing.assert_close(ema.shadow["n"].weight, net.weight.detach(), atol=1e-6, rtol=0)
    st = ema.state_dict(); other = rs.EMA({"n": nn.Linear(3, 2)}, decay=0.5); other.load_state_dict(st)
    assert other.n == 201 and other.decay == 0.9
    torch.testing.assert_close(other.shadow["n"].weight, ema.shadow["n"].weight)
    legacy = rs.EMA({"G_Y": nn.Linear(3, 2)}, decay=0.5)                       # the first runs' checkpoints: nets beside n and decay
    legacy.load_state_dict({"n": 7, "decay": 0.99, "G_Y": net.state_dict()})
    assert legacy.n == 7 and torch.equal(legacy.shadow["G_Y"].weight, net.weight.detach())


def _record(name, miou, seed=0, budget=1100):
    "A fake finished record whose per-clip mIoU is `miou` (other metrics constant) and whose means agree with its clips."
    clips = [f"traffic_{i}" for i in range(len(miou))]
    def scores(shift):
        per = {c: {m: (v + shift if m == "mIoU" else 0.5) for m in EVAL_METRICS} for c, v in zip(clips, miou)}
        return dict(clips=clips, per_clip=per, mean={m: mean_interval([per[c][m] for c in clips]) for m in EVAL_METRICS},
                    pooled={"pixel acc": 0.5, "mIoU": float(np.mean(miou)), "vehicle IoU": 0.1})
    return dict(name=name, recipe=rs.recipe({"seed": seed}), steps=budget, cpu_seconds=500.0, baseline_steps=budget,
                budget_steps=budget, scores=scores(0.0), scores_ema=scores(0.01))


def test_summary_compares_clip_by_clip(tmp_path):
    base = [0.2, 0.3, 0.25, 0.4]
    recs = {"baseline-s0": _record("baseline-s0", base), "g-wide": _record("g-wide", [v + d for v, d in zip(base, (0.1, -0.02, 0.05, 0.03))])}
    s = rs.summary_of(recs)
    rows = {r["name"]: r for r in s["rows"]}
    assert set(rows) == {"baseline-s0", "baseline-s0+ema", "g-wide", "g-wide+ema"} and s["baseline_steps"] == 1100
    d = rows["g-wide"]["mIoU_vs_baseline_s0"]
    assert d["mean"] == pytest.approx(np.mean([0.1, -0.02, 0.05, 0.03]), abs=1e-5) and d["better"] == 3 and d["n"] == 4
    assert rows["baseline-s0+ema"]["mIoU_vs_baseline_s0"]["mean"] == pytest.approx(0.01, abs=1e-5)
    md = rs.markdown_table(s)
    assert "1,100 steps of the demo's recipe" in md and md.count("\n| ") == 5 and "(3/4)" in md
    for n, r in recs.items(): (tmp_path / f"{n}.json").write_text(json.dumps(r))
    (tmp_path / "reference.json").write_text("{}"); (tmp_path / "step-costs.json").write_text("{}")
    assert set(rs.finished(tmp_path)) == set(recs)                                              # reference, costs, summary are not runs
    assert rs.summarise(tmp_path)["rows"] == json.loads((tmp_path / "summary.json").read_text())["rows"]
    with pytest.raises(ValueError, match="different budgets"):
        rs.summary_of({**recs, "g-deep": _record("g-deep", base, budget=600)})


def test_plan_adds_the_combination_once_every_lever_ran():
    base = [0.2, 0.3, 0.25, 0.4]
    recs = {"baseline-s0": _record("baseline-s0", base)}
    fixed = [n for n, _, _ in rs.CANDIDATES if n not in rs.NOT_RERUN]
    assert [n for n, _, _ in rs.plan(recs)] == fixed and set(rs.NOT_RERUN) <= set(rs.GROUPS)
    gains = {n: -0.01 for n in rs.GROUPS}; gains.update({"g-wide": 0.05, "g-deep": 0.02, "sched-const0": 0.03, "d-lr-2x": 0.01})
    for n, g in gains.items(): recs[n] = _record(n, [v + g for v in base])
    t = rs.together(recs)
    assert t["overrides"] == {"model": {"ngf": 32}, "const_share": 0.0, "d_lr_factor": 2.0}    # the best of each group that beat the baseline
    names = [n for n, _, _ in rs.plan(recs)]
    assert names[len(fixed):] == ["together-s0", "together-s1"]                                 # the combination, two seeds
    recs["together-s0"] = _record("together-s0", [v - 0.02 for v in base])                    # the combination loses:
    assert [n for n, _, _ in rs.plan(recs)][len(fixed):] == ["together-s0", "together-s1", "g-wide-s1", "sched-const0-s1"]
    del recs["together-s0"]                                                                    # the two best levers alone, seed 1
    del recs["sched-const0"], recs["d-lr-2x"]                                                  # levers not rerun: the rest combine
    assert rs.together(recs)["overrides"] == {"model": {"ngf": 32}}
    recs["g-deep"] = _record("g-deep", [v - 0.01 for v in base])                               # one lever beats the baseline: no combination,
    assert [n for n, _, _ in rs.plan(recs)][len(fixed):] == ["g-wide-s1"]                        # its second seed
    assert dict((n, o) for n, o, _ in rs.plan(recs))["g-wide-s1"] == {"model": {"ngf": 32}, "seed": 1}


def test_bad_budget_is_one_line(capsys):
    with pytest.raises(SystemExit): rs.main(["--baseline-steps", "0", "--list"])
    assert "--baseline-steps 0: expected a whole number ≥ 1" in capsys.readouterr().err


def test_step_budget_buys_equal_compute():
    base, wide, deep = rs.recipe({}), rs.recipe({"model": {"ngf": 32}}), rs.recipe({"model": {"n_blocks": 6, "lambda_cyc": 20.0}})
    assert rs.compute_key(base) == rs.compute_key(rs.recipe({"const_share": 0.0, "seed": 1, "n_train": 64, "model": {"pool_size": 50}}))
    assert len({rs.compute_key(r) for r in (base, wide, deep, rs.recipe({"batch_size": 2}))}) == 4
    costs = {rs.compute_key(base): 0.4, rs.compute_key(wide): 0.5, rs.compute_key(deep): 0.8}
    assert rs.step_budget(base, costs, 1100) == 1100 and rs.step_budget(wide, costs, 1100) == 880 and rs.step_budget(deep, costs, 1100) == 550
    assert rs.step_budget(rs.recipe({"d_lr_factor": 2.0}), costs, 1100) == 1100                 # same arithmetic: same steps


def test_family_names():
    assert rs.family("baseline-s1") == ("baseline", 1) and rs.family("g-deep") == ("g-deep", 0)
    assert rs.family("g-deep-s1") == ("g-deep", 1) and rs.family("together-s0") == ("together", 0) and rs.family("data-64") == ("data-64", 0)


def test_chosen_needs_both_seeds_above_zero():
    base0, base1 = [0.2, 0.3, 0.25, 0.4, 0.35], [0.22, 0.28, 0.27, 0.38, 0.33]
    recs = {"baseline-s0": _record("baseline-s0", base0), "baseline-s1": _record("baseline-s1", base1, seed=1)}
    assert rs.chosen({"baseline-s0": recs["baseline-s0"]}) is None                            # one seed: no choice yet
    pick = rs.chosen(recs)
    assert pick["recipe"] == "baseline" and pick["ema"] and pick["overrides"] == {"seed": 0}  # the fake average reads +0.01 on every clip
    up = lambda xs, d: [x + d for x in xs]
    wobble = (0.03, 0.05, 0.02, 0.04, 0.03)
    recs["g-deep"] = _record("g-deep", [x + d for x, d in zip(base0, wobble)])
    recs["g-deep-s1"] = _record("g-deep-s1", [x + d for x, d in zip(base1, wobble)], seed=1)
    recs["data-64"] = _record("data-64", up(base0, 0.2))                                      # one seed only: not a finalist
    pick = rs.chosen(recs)
    assert pick["recipe"] == "g-deep" and pick["overrides"] == {"model": {"n_blocks": 6}, "seed": 0}
    assert pick["vs_baseline"][1]["mean"] == pytest.approx(np.mean(wobble), abs=1e-6)
    recs["g-deep-s1"] = _record("g-deep-s1", [x + d for x, d in zip(base1, (0.03, -0.05, 0.02, -0.04, 0.0))], seed=1)
    assert rs.chosen(recs)["recipe"] == "baseline"                                             # seed 1's interval includes zero


def test_workers_claim_different_candidates(tmp_path):
    import subprocess, sys
    assert rs.claim(tmp_path / "a")
    other = f"import importlib.util as u; s = u.spec_from_file_location('r', {str(ROOT / 'scripts' / 'recipe_search.py')!r}); " \
            f"r = u.module_from_spec(s); s.loader.exec_module(r); from pathlib import Path; " \
            f"print(r.claim(Path({str(tmp_path / 'a')!r})), r.claim(Path({str(tmp_path / 'b')!r})))"
    out = subprocess.run([sys.executable, "-c", other], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]                                                            # a is held here; b was free
    assert rs.claim(tmp_path / "a")                                                            # re-entrant in the holding process


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); return m


def test_table5_long_plan_and_configs():
    t5 = _script("table5_long")
    plan = t5.plan()
    assert plan[:4] == [(m, 0) for m in t5.MAIN_ROWS] and len(plan) == 4 * 5 + 3 * 3 + 5
    assert plan[-5:] == [(t5.EQUAL_CPU, s) for s in range(5)]                                   # the extra row last
    costs = {"i2vgan": 0.40, "cycle-gan": 0.15}
    assert t5.steps_of("i2vgan", 6000, costs) == 6000 and t5.steps_of(t5.EQUAL_CPU, 6000, costs) == 16000   # what 6,000 I2V-GAN steps cost
    assert [s for m, s in plan if m == "i2vgan-no-pcp"] == [0, 1, 2]
    assert plan.index(("i2vgan-no-pcp", 0)) == 4 * 5                                            # the methods' five seeds come first
    r = rs.recipe({"model": {"n_layers_d": 2, "ngf": 32}})
    c = t5.config("cycle-gan", 3, r, 6000)                                                     # the recipe's D depth replaces the demo's
    assert (c.n_layers_d, c.ngf, c.seed, c.size, c.use_recycle) == (2, 32, 3, 64, False)
    assert t5.config("i2vgan", 0, rs.recipe({}), 6000).n_layers_d == rs.DEMO_D_LAYERS
    clip = np.arange(16, dtype=np.uint8)[:, None, None, None].repeat(8, 1).repeat(8, 2).repeat(3, 3)   # frame t is all t
    strip = t5.strip(clip, clip + 100)
    assert strip.shape == (16, 16 * 8, 3) and strip[0, 8 * 5, 0] == 5 and strip[8, 8 * 5, 0] == 105   # every frame, one row per clip
    assert t5.strip(clip, every=4).shape == (8, 32, 3) and t5.strip(clip, every=4)[0, 8, 0] == 4


def test_recipe_model_reads_search_names():
    tr = _script("train_recipe_model")
    assert tr.recipe_of("baseline-s0") == {} and tr.recipe_of("baseline-s1") == {"seed": 1}
    assert tr.recipe_of("g-deep-s1") == {"model": {"n_blocks": 6}, "seed": 1}
    with pytest.raises(SystemExit, match="not a candidate"): tr.recipe_of("g-huge")
    assert tr.run_name("baseline-s0", 96, 4.0) == "baseline-s0-n96-4h"
    assert tr.run_name("sched-const75", 96, steps=38000) == "sched-const75-n96-38000steps"


def test_shipped_config_states_the_schedule_it_trained_with():
    "The shipped config reads as the library's own schedule (constant, then linear to zero) and carries no average left to keep."
    tr = _script("train_recipe_model")
    cfg = tr.shipped_config(rs.model_config(rs.recipe({})).to_dict(), 38000, 0.75)
    assert (cfg["n_steps"], cfg["n_steps_decay"], cfg["ema_decay"]) == (28500, 9500, 0.0)
    from i2vgan.core import I2VGANConfig
    assert I2VGANConfig.from_dict(cfg).n_steps == 28500


def test_recipe_model_refuses_a_run_that_is_not_there(tmp_path, capsys):
    tr = _script("train_recipe_model")
    for flag in ("--ship", "--curve"):
        with pytest.raises(SystemExit):
            tr.main(["--recipe", "sched-const75", "--steps", "100", "--runs", str(tmp_path), flag])
        assert "no run of this recipe and budget" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())                                                          # nothing made on the way


def test_library_average_is_the_search_average():
    "The moving average the library now keeps (`I2VGAN.update_average`) is the one the search measured (`recipe_search.EMA`)."
    from i2vgan.fast import tiny_config
    from i2vgan.core import I2VGAN
    m = I2VGAN(tiny_config("cycle-gan", ema_decay=0.995))
    ema = rs.EMA(rs.translating(m), 0.995)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        with torch.no_grad():
            for p in m.generator_parameters(): p.add_(0.01 * torch.randn(p.shape, generator=g))
        m.update_average(); ema.update(rs.translating(m))
    for avg, name in ((m.G_Y_avg, "G_Y"), (m.P_Y_avg, "P_Y")):
        for a, b in zip(avg.state_dict().values(), ema.shadow[name].state_dict().values()): torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_sittings_name_their_precision():
    "The fast step takes bf16 autocast where the CPU has it natively: each sitting records which arithmetic it trained with."
    class T: amp = True
    assert rs.precision(T()) == "bf16 autocast"
    T.amp = False
    assert rs.precision(T()) == "float32"


def test_table5_long_workers_skip_finished_and_held_runs():
    t5 = _script("table5_long")
    jobs = [("cycle-gan", 0), ("recycle-gan", 0), ("i2vgan", 0), ("cycle-gan", 1), ("recycle-gan", 1)]
    done = lambda m, s: (m, s) == ("cycle-gan", 0)
    held = {("i2vgan", 0)}                                           # another worker trains it
    claims = []
    claim = lambda m, s: claims.append((m, s)) or (m, s) not in held
    assert list(t5.my_jobs(jobs, 1, 1, done, claim)) == [("recycle-gan", 0), ("cycle-gan", 1), ("recycle-gan", 1)]
    assert ("cycle-gan", 0) not in claims                            # a finished run is not even claimed
    assert list(t5.my_jobs(jobs, 2, 2, done, lambda m, s: True)) == [("recycle-gan", 0), ("cycle-gan", 1)]   # every 2nd from the 2nd
