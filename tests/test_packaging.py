"What leaves the repository: the docs site's pictures (Quarto's pre-render step) and the installed package's data."
import importlib.util, re, shutil, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("docs_assets", REPO / "scripts" / "docs_assets.py")
docs_assets = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs_assets)
LINKED = re.compile(r'(?:\]\(|src=\\?["\'])((?:\.\./)?assets/[^)"\'\\ ]+)')

def test_quarto_runs_the_step_from_its_project_folder():
    quarto = (REPO / "nbs" / "_quarto.yml").read_text()
    cmd = re.search(r"^\s*pre-render:\s*python (\S+)", quarto, re.M)
    assert cmd, "nbs/_quarto.yml has no pre-render step"
    for project in ("nbs", "_proc"):                       # Quarto in nbs/ (preview) or nbdev's copy in _proc/
        assert (REPO / project / cmd[1]).resolve() == (REPO / "scripts" / "docs_assets.py").resolve()

def test_docs_pages_find_every_picture(tmp_path):
    proc = tmp_path / "_proc"; proc.mkdir()
    for nb in (REPO / "nbs").glob("*.ipynb"): shutil.copy(nb, proc / nb.name)
    linked = {m for nb in proc.glob("*.ipynb") for m in LINKED.findall(nb.read_text())}
    assert any(l.startswith("../assets/") for l in linked)                  # the case this step is for
    changed = docs_assets.publish_assets(proc)
    assert "index.ipynb" in changed
    after = {m for nb in proc.glob("*.ipynb") for m in LINKED.findall(nb.read_text())}
    assert after and not any(l.startswith("../") for l in after)
    missing = sorted(l for l in after if not (proc / l).is_file())
    assert not missing, f"pictures the pages link but assets/ lacks: {missing}"

def test_the_sources_are_never_rewritten(tmp_path):
    before = {p.name: p.read_bytes() for p in (REPO / "nbs").glob("*.ipynb")}
    assert docs_assets.publish_assets(REPO / "nbs") == []
    assert not (REPO / "nbs" / "assets").exists()
    assert {p.name: p.read_bytes() for p in (REPO / "nbs").glob("*.ipynb")} == before

def test_package_data_is_declared(tmp_path):
    "setup.py installs the shipped weights without setuptools' warning that a data folder is not a declared package."
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv", "nbs", "assets", "results", "outputs",
                                                          "_proc", "_docs", "__pycache__", "*.egg-info", "build"))
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path / "lib")],
                       cwd=src, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "absent from the `packages`" not in r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    shipped = {p.relative_to(REPO / "i2vgan") for p in (REPO / "i2vgan" / "models").rglob("*") if p.is_file()}
    assert shipped and all((tmp_path / "lib" / "i2vgan" / p).is_file() for p in shipped)
