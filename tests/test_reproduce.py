"""pytest checks of `i2vgan reproduce` (nbs/08_reproduction.ipynb, nbs/09_cli.ipynb): the command runs, writes
its files, resumes without redoing finished runs, and refuses bad input with one line.

Runs are tiny (32 px, 2 steps, 4 test frames per clip) and, but for the command's own test of the default data
(the built-in world, rendered at 32 px), train on one small world rendered once for the module."""
import json, subprocess, sys
from pathlib import Path
import pytest
from i2vgan.cli import main
from i2vgan.reproduce import ROWS, reproduce, summarize, load_results
from i2vgan.world import make_world

ARGS = ["--rows", "cycle-gan", "--seeds", "0", "--main-seeds", "--steps", "2", "--size", "32", "--test-frames", "4", "--device", "cpu"]


def cli(*args):
    "Run the installed `i2vgan` command (fall back to `python -m` on the entry point)."
    exe = Path(sys.executable).with_name("i2vgan")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from i2vgan.cli import main; main()"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    "A small world: two layouts per domain and kind, one test clip per kind."
    return str(make_world(tmp_path_factory.mktemp("data") / "world", size=32, n_train=2, train_frames=5, n_test=1, test_frames=4))


def test_command_runs_and_resumes(tmp_path):
    out = tmp_path / "tmp"
    r = cli("reproduce", "--out", str(out), *ARGS)
    assert r.returncode == 0, r.stderr[-2000:]
    res_path = out / "cycle-gan" / "seed0" / "results.json"
    res = json.loads(res_path.read_text())
    assert (res["row"], res["steps"], res["seed"], res["size"], res["vgg_weights"]) == ("cycle-gan", 2, 0, 32, "none")
    assert {"PSNR", "SSIM", "E_warp", "tOF"} <= set(res["metrics"]) and res["test_frames"] == 4 * len(res["test_clips"]) == 24
    assert {"host", "cpu", "torch"} <= set(res["machine"]) and res["device"] == "cpu" and res["train_seconds"] > 0
    for f in ("summary.json", "methods.gif", "curves.png", "world/world.json", "untrained/seed0/results.json",
              "infrared/seed0/results.json"): assert (out / f).exists(), f
    assert "Cycle-GAN" in r.stdout and "PSNR" in r.stdout
    stamp = res_path.stat().st_mtime_ns
    r2 = cli("reproduce", "--out", str(out), "--no-figures", *ARGS)
    assert r2.returncode == 0, r2.stderr[-2000:]
    assert "skipped" in r2.stdout and res_path.stat().st_mtime_ns == stamp


def test_resume_adds_runs_and_redoes_on_request(tmp_path, world):
    kw = dict(steps=2, size=32, test_frames=4, device="cpu", verbose=False, data=world, main_seeds=())
    reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), **kw)
    p0 = tmp_path / "cycle-gan" / "seed0" / "results.json"; stamp = p0.stat().st_mtime_ns
    s = reproduce(tmp_path, rows=["cycle-gan"], seeds=(0, 1), **kw)          # seed 0 reused, seed 1 new
    assert p0.stat().st_mtime_ns == stamp and (tmp_path / "cycle-gan" / "seed1" / "results.json").exists()
    row = s["cycle-gan"]
    assert row["seeds"] == "0,1" and len(row["PSNR_runs"]) == 2 and row["PSNR_std"] is not None
    assert row["PSNR"] == pytest.approx(sum(row["PSNR_runs"]) / 2)
    s2 = reproduce(tmp_path, rows=["cycle-gan"], seeds=(0, 1), workers=2, **kw)   # all finished: reloaded, no worker started
    assert s2.rows == s.rows and p0.stat().st_mtime_ns == stamp
    reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), resume=False, **kw)
    assert p0.stat().st_mtime_ns != stamp
    assert [r["seed"] for r in load_results(tmp_path, rows=["cycle-gan"])] == [0, 1]
    assert [r["row"] for r in load_results(tmp_path, seeds=[0])] == ["infrared", "untrained", "cycle-gan"]


def test_interrupted_run_continues_from_checkpoint(tmp_path, world):
    "A run with a checkpoint but no results.json (killed before scoring) continues, not restarts."
    kw = dict(steps=4, size=32, test_frames=4, device="cpu", verbose=False, data=world, main_seeds=())
    reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), **kw)
    run = tmp_path / "cycle-gan" / "seed0"
    full = json.loads((run / "results.json").read_text())["metrics"]
    (run / "results.json").unlink()
    reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), **kw)
    again = json.loads((run / "results.json").read_text())
    assert again["steps"] == 4 and again["metrics"] == full      # the final checkpoint is reused: same model, same scores


@pytest.mark.parametrize("args,needle", [
    (["--rows", "mocycle-gan"], "mocycle-gan"),
    (["--workers", "0"], "workers"),
    (["--data", "/no/such/folder"], "/no/such/folder"),
    (["--test-frames", "1"], "test_frames"),
    (["--steps", "0"], "--steps"),
])
def test_bad_input_one_line(tmp_path, capsys, args, needle):
    with pytest.raises(SystemExit) as e: main(["reproduce", "--out", str(tmp_path / "o")] + args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and needle in err and "Traceback" not in err and err.count("\n") == 1, err


def test_other_settings_in_same_folder_refused(tmp_path, world):
    kw = dict(size=32, test_frames=4, device="cpu", verbose=False, data=world, main_seeds=())
    reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), steps=2, **kw)
    with pytest.raises(ValueError, match="another config"): reproduce(tmp_path, rows=["cycle-gan"], seeds=(0,), steps=3, **kw)
    with pytest.raises(FileNotFoundError, match="no results.json"): summarize(tmp_path / "empty")
