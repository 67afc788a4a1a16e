"""Developer checks that `make test` runs before the notebook tests.

    python tests/dev.py readme   # write README.md from nbs/index.ipynb (nbconvert's Markdown exporter)
    python tests/dev.py check    # fail if i2vgan/ or README.md differ from what the notebooks produce
    python tests/dev.py execute nbs/10_world.ipynb ...   # run notebooks in place to keep their outputs

Quarto (which `nbdev_readme` needs) cannot be installed on these machines, hence nbconvert.
"""
import filecmp, re, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB, NBS = ROOT/'i2vgan', ROOT/'nbs'
DIRECTIVE = re.compile(r'^\s*#\|')

def readme_text(nb_path=NBS/'index.ipynb') -> str:
    "README.md's text: index.ipynb without hidden cells or `#|` directives, image paths made root-relative."
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.read(nb_path, as_version=4)
    cells = []
    for cell in nb.cells:
        lines = cell.source.splitlines()
        if cell.cell_type == 'code':
            flags = ' '.join(l for l in lines if DIRECTIVE.match(l))
            if 'hide' in flags or 'exec_doc' in flags: continue
            if re.search(r'echo:\s*false', flags):          # only what the cell printed, as Markdown (numbers read from files)
                text = ''.join(o.get('data', {}).get('text/markdown', '') or ''.join(o.get('text', ''))
                               for o in cell.get('outputs', []))
                cells.append(nbformat.v4.new_markdown_cell(text)); continue
            cell.source = '\n'.join(l for l in lines if not DIRECTIVE.match(l)).strip()
            if not cell.source: continue
        cells.append(cell)
    nb.cells = cells
    body, _ = MarkdownExporter().from_notebook_node(nb)
    body = body.replace('](../assets/', '](assets/').replace('src="../assets/', 'src="assets/')
    body = re.sub(r'\]\((\d\d_\w+\.ipynb)\)', r'](nbs/\1)', body)   # notebook links, relative to the repo root
    header = '<!-- Generated from nbs/index.ipynb by `make readme`; edit the notebook, not this file. -->\n\n'
    return header + re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'

def write_readme():
    (ROOT/'README.md').write_text(readme_text())
    print('wrote README.md from nbs/index.ipynb')

def exported_lib_differs() -> list:
    "Export the notebooks into a scratch copy of the project and list the library files that differ."
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ('settings.ini', 'setup.py', 'README.md'):
            if (ROOT/name).exists(): shutil.copy(ROOT/name, tmp/name)
        shutil.copytree(NBS, tmp/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc'))
        shutil.copytree(LIB, tmp/'i2vgan', ignore=shutil.ignore_patterns('__pycache__'))
        exe = Path(sys.executable).with_name('nbdev_export')
        subprocess.run([str(exe)], cwd=tmp, check=True)
        ours = {p.relative_to(LIB) for p in LIB.rglob('*.py') if '__pycache__' not in p.parts}
        theirs = {p.relative_to(tmp/'i2vgan') for p in (tmp/'i2vgan').rglob('*.py') if '__pycache__' not in p.parts}
        return sorted(str(p) for p in ours ^ theirs) + sorted(
            str(p) for p in ours & theirs if not filecmp.cmp(LIB/p, tmp/'i2vgan'/p, shallow=False))

def check():
    problems = []
    differs = exported_lib_differs()
    if differs: problems.append(f"i2vgan/ is out of sync with nbs/ ({', '.join(differs)}): run `make export` and commit.")
    if not (ROOT/'README.md').exists() or (ROOT/'README.md').read_text() != readme_text():
        problems.append('README.md differs from nbs/index.ipynb: run `make readme` and commit.')
    for p in problems: print('FAIL:', p)
    if problems: sys.exit(1)
    print('ok: library and README are in sync with the notebooks')

SKIP = re.compile(r'^\s*#\|\s*(slow|gpu|notest|eval:\s*false)\b', re.M)

def execute(*paths):
    "Run notebooks top to bottom from nbs/ (as Jupyter and nbdev_test do), skipping cells flagged slow, gpu, notest or"
    " `eval: false`, and write them back with their outputs; progress bars keep only their last line. Stops at an error."
    import os, time
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    for path in map(Path, paths):
        nb, shell, t0, cwd = read_nb(path), CaptureShell(), time.monotonic(), os.getcwd()
        def skip(cell): return cell.cell_type == 'code' and bool(SKIP.search(cell.source))
        def tidy(cell):
            for o in cell.get('outputs', []):
                if o.get('output_type') == 'stream':
                    o['text'] = '\n'.join(l.rsplit('\r', 1)[-1] for l in ''.join(o['text']).split('\n'))
        os.chdir(path.resolve().parent)
        try: shell.run_all(nb, exc_stop=True, preproc=skip, postproc=tidy)
        finally: os.chdir(cwd)
        write_nb(nb, path)
        subprocess.run([str(Path(sys.executable).with_name('nbdev_clean')), '--fname', str(path.resolve())], cwd=ROOT, check=True)
        print(f'{path}: executed in {time.monotonic() - t0:.0f} s')

if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'check'
    if cmd == 'execute': execute(*sys.argv[2:])
    else: {'readme': write_readme, 'check': check}[cmd]()
