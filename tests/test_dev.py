"The developer checks of tests/dev.py catch what they are for: drifted outputs, stored warnings, mixed import cells."
import importlib.util, json, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("dev", REPO / "tests" / "dev.py")
dev = importlib.util.module_from_spec(spec); spec.loader.exec_module(dev)

def code(src, outputs=()):
    return dict(cell_type="code", execution_count=None, id=f"c{abs(hash(src)) % 10**6:06d}", metadata={},
                outputs=list(outputs), source=src)

def stdout(text): return dict(output_type="stream", name="stdout", text=text)

def write_nb(path, cells):
    path.write_text(json.dumps(dict(cells=cells, metadata=dict(kernelspec=dict(name="python3", language="python",
                    display_name="Python 3")), nbformat=4, nbformat_minor=5)))
    return path

def test_normalise_masks_numbers_progress_and_paths():
    a = ("took 85.9 s, loss 1.3e-06 at step 1,600\n 10%|█         | 1/10 [00:01<00:09, 1.00it/s]"
         "\r100%|██████████| 10/10 [00:10<00:00, 1.00it/s]\ndone\n")
    b = "took 45.1 s, loss 2.0e-05 at step 800\ndone\n"
    assert dev.normalise(a) == dev.normalise(b)
    assert dev.normalise("wrote /tmp/tmpab12/x.png") == dev.normalise("wrote /tmp/tmpzz99/y.png")
    assert dev.normalise("PSNR went up") != dev.normalise("PSNR went down")

def test_outputs_check_fails_on_drift_and_warnings_and_honours_opt_out(tmp_path):
    nb = write_nb(tmp_path / "t.ipynb", [
        code("print('loss', 0.5)", [stdout("loss 0.25\n")]),                          # same up to numbers: fine
        code("print('the model learns')", [stdout("the model forgets\n")]),            # drift
        code("print(1)", [dict(output_type="stream", name="stderr", text="x.py:1: UserWarning: careful\n"), stdout("1\n")]),
        code("#| outputs: volatile the clock\nimport time; print(time.ctime())", [stdout("yesterday\n")]),
        code("#| slow\nprint('slow')", [stdout("kept as measured\n")]),               # not run, not compared
    ])
    problems = dev.check_outputs_one(nb)
    assert len(problems) == 3, problems
    assert "differs" in problems[0] and "forgets" in problems[0] and "learns" in problems[0]
    assert "warning or traceback" in problems[1] and "UserWarning: careful" in problems[1]
    assert "differs" in problems[2]                                                 # the warning is gone now, too

def test_outputs_check_reports_an_error_and_an_opt_out_without_reason(tmp_path):
    assert "raised ZeroDivisionError" in dev.check_outputs_one(write_nb(tmp_path / "e.ipynb", [code("1/0")]))[0]
    assert "needs a reason" in dev.check_outputs_one(write_nb(tmp_path / "r.ipynb", [code("#| outputs: volatile\nprint(2)")]))[0]

def test_split_imports_moves_imports_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setattr(dev.subprocess, "run", lambda *a, **k: None)                   # no nbdev_clean here
    nb = write_nb(tmp_path / "s.ipynb", [
        code("#| hide\nimport os\nx = 1; import sys; y = 2\nprint(x)"),
        code("#| export\nimport json\ndef f(): pass"),                                  # exported: nbdev runs it whole
        code("import math"),
    ])
    dev.split_imports(nb)
    once = json.loads(nb.read_text())
    srcs = ["".join(c["source"]) for c in once["cells"]]
    assert srcs[0] == "#| hide\nimport os\nimport sys"
    assert srcs[1] == "#| hide\nx = 1; y = 2\nprint(x)"
    assert srcs[2:] == ["#| export\nimport json\ndef f(): pass", "import math"]
    dev.split_imports(nb)
    assert json.loads(nb.read_text()) == once

def test_outputs_check_wants_a_widgets_saved_state(tmp_path):
    view = dict(output_type="display_data", metadata={}, data={"text/plain": "IntSlider(value=3)",
                "application/vnd.jupyter.widget-view+json": dict(model_id="abc", version_major=2, version_minor=0)})
    problems = dev.check_outputs_one(write_nb(tmp_path / "w.ipynb", [code("#| notest\nW.IntSlider(3)", [view])]))
    assert len(problems) == 1 and "widget without its saved state" in problems[0]

def test_execute_replaces_outputs_even_when_a_cell_prints_nothing_now(tmp_path):
    nb = write_nb(tmp_path / "x.ipynb", [
        code("x = 1", [stdout("an old warning\n")]),                                  # prints nothing now: cleared
        code("print(x + 1)", [stdout("stale\n")]),                                    # prints something else: replaced
        code("#| slow\nprint('slow')", [stdout("kept as measured\n")]),               # skipped: kept
    ])
    dev.execute(nb)
    outs = [c["outputs"] for c in json.loads(nb.read_text())["cells"]]
    assert outs[0] == [] and "".join(outs[1][0]["text"]) == "2\n" and "kept as measured" in "".join(outs[2][0]["text"])

def test_second_run_catches_cells_that_print_the_machine(tmp_path, capsys):
    "`outputs` runs each notebook again with bf16 detection off and another thread count: a cell printing either fails."
    nb = write_nb(tmp_path / "m.ipynb", [
        code("import torch, time"),
        code("print(torch.get_num_threads(), 'threads')", [stdout("7 threads\n")]),      # stored on a 7-thread machine
        code("import os; print('bf16 off' if os.environ.get('I2VGAN_CPU_BF16') == '0' else 'bf16 on')", [stdout("bf16 on\n")]),
        code("t = time.monotonic(); print(f'4 frames in {time.monotonic() - t:.4f} s, error 1.3e-07 < 1e-05')",
             [stdout("4 frames in 0.0100 s, error 2.0e-07 < 1e-05\n")]),                 # durations and fractions may differ
        code("#| outputs: volatile the thread count, shown on purpose\nprint(torch.get_num_threads())", [stdout("1\n")]),
    ])
    with pytest.raises(SystemExit):
        dev._parallel("outputs", [nb], workers=1)
    out = capsys.readouterr().out
    assert "FAIL m.ipynb" in out
    problems = [l for l in out.splitlines() if l.startswith("FAIL: ")]
    assert len(problems) == 3, out                                               # threads (changed), bf16 (stored + changed)
    assert sum("machine made to look different" in p for p in problems) == 2
    assert "threads" in out and "bf16 off" in out
    assert dev.variant_env({"OMP_NUM_THREADS": "1"})["OMP_NUM_THREADS"] == "2"
    assert dev.variant_env({"OMP_NUM_THREADS": "2"}) == {"OMP_NUM_THREADS": "3", "I2VGAN_CPU_BF16": "0", "OMP_WAIT_POLICY": "PASSIVE"}

def test_normalise_can_keep_integers_but_not_durations():
    assert dev.normalise("1 threads", keep_integers=True) != dev.normalise("2 threads", keep_integers=True)
    assert dev.normalise("1 threads") == dev.normalise("2 threads")
    table = "| run | train s/run | steps |\n|---|---|---|\n| a | 5 | {} |"
    assert dev.normalise(table.format(2), keep_integers=True) != dev.normalise(table.format(3), keep_integers=True)
    for a, b in [("took 3 s", "took 40 s"), ("8 ms per frame", "12 ms per frame"), ("loss 0.52", "loss 0.57"),
                 ("error 1e-06", "error 3e-07"), ("2.88 steps/s", "3 steps/s"),
                 ("| run | train s/run | steps |\n|---|---|---|\n| a | 5 | 2 |", "| run | train s/run | steps |\n|---|---|---|\n| a | 0.7 | 2 |")]:
        assert dev.normalise(a, keep_integers=True) == dev.normalise(b, keep_integers=True), (a, b)
