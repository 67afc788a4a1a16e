"scripts/recipe_search.py: its schedule by CPU fraction, the moving average, recipes, the plan and the summary (no training)."
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


def test_lr_factor_follows_the_cpu_budget():
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


def _record(name, miou, seed=0, budget=600.0):
    "A fake finished record whose per-clip mIoU is `miou` (other metrics constant) and whose means agree with its clips."
    clips = [f"traffic_{i}" for i in range(len(miou))]
    def scores(shift):
        per = {c: {m: (v + shift if m == "mIoU" else 0.5) for m in EVAL_METRICS} for c, v in zip(clips, miou)}
        return dict(clips=clips, per_clip=per, mean={m: mean_interval([per[c][m] for c in clips]) for m in EVAL_METRICS},
                    pooled={"pixel acc": 0.5, "mIoU": float(np.mean(miou)), "vehicle IoU": 0.1})
    return dict(name=name, recipe=rs.recipe({"seed": seed}), steps=100, cpu_seconds=budget, budget_cpu_seconds=budget,
                scores=scores(0.0), scores_ema=scores(0.01))


def test_summary_compares_clip_by_clip(tmp_path):
    base = [0.2, 0.3, 0.25, 0.4]
    recs = {"baseline-s0": _record("baseline-s0", base), "g-wide": _record("g-wide", [v + d for v, d in zip(base, (0.1, -0.02, 0.05, 0.03))])}
    s = rs.summary_of(recs)
    rows = {r["name"]: r for r in s["rows"]}
    assert set(rows) == {"baseline-s0", "baseline-s0+ema", "g-wide", "g-wide+ema"} and s["budget_cpu_minutes"] == 10
    d = rows["g-wide"]["mIoU_vs_baseline_s0"]
    assert d["mean"] == pytest.approx(np.mean([0.1, -0.02, 0.05, 0.03]), abs=1e-5) and d["better"] == 3 and d["n"] == 4
    assert rows["baseline-s0+ema"]["mIoU_vs_baseline_s0"]["mean"] == pytest.approx(0.01, abs=1e-5)
    md = rs.markdown_table(s)
    assert "10 CPU minutes" in md and "20-30" in md and md.count("\n| ") == 5 and "(3/4)" in md
    for n, r in recs.items(): (tmp_path / f"{n}.json").write_text(json.dumps(r))
    (tmp_path / "reference.json").write_text("{}")
    assert set(rs.finished(tmp_path)) == set(recs)                                              # reference/summary are not runs
    assert rs.summarise(tmp_path)["rows"] == json.loads((tmp_path / "summary.json").read_text())["rows"]
    with pytest.raises(ValueError, match="different CPU budgets"):
        rs.summary_of({**recs, "g-deep": _record("g-deep", base, budget=300.0)})


def test_plan_adds_the_combination_once_every_lever_ran():
    base = [0.2, 0.3, 0.25, 0.4]
    recs = {"baseline-s0": _record("baseline-s0", base)}
    assert [n for n, _, _ in rs.plan(recs)] == [n for n, _, _ in rs.CANDIDATES]
    gains = {n: -0.01 for n in rs.GROUPS}; gains.update({"g-wide": 0.05, "g-deep": 0.02, "sched-const0": 0.03, "d-lr-2x": 0.01})
    for n, g in gains.items(): recs[n] = _record(n, [v + g for v in base])
    t = rs.together(recs)
    assert t["overrides"] == {"model": {"ngf": 32}, "const_share": 0.0, "d_lr_factor": 2.0}    # the best of each group that beat the baseline
    names = [n for n, _, _ in rs.plan(recs)]
    assert names[len(rs.CANDIDATES):] == ["together-s0", "together-s1", "g-wide-s1", "sched-const0-s1"]
    assert dict((n, o) for n, o, _ in rs.plan(recs))["g-wide-s1"] == {"model": {"ngf": 32}, "seed": 1}


def test_bad_budget_is_one_line(capsys):
    with pytest.raises(SystemExit): rs.main(["--cpu-minutes", "0", "--list"])
    assert "--cpu-minutes 0.0: expected a positive number" in capsys.readouterr().err
