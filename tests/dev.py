"""Developer checks that `make test` runs before the notebook tests.

    python tests/dev.py readme   # write README.md from nbs/index.ipynb (nbconvert's Markdown exporter)
    python tests/dev.py check    # fail if i2vgan/ or README.md differ from what the notebooks produce
    python tests/dev.py execute nbs/10_world.ipynb ...   # run notebooks in place to keep their outputs (--slow: slow cells too)
    python tests/dev.py outputs [nbs/XX.ipynb ...]       # run the notebooks' tests; fail where a stored output drifted
                                                         # (twice: then as on another machine, see `variant_env`)
    python tests/dev.py docs [nbs/XX.ipynb ...]          # nbdev's docs processing (what `nbdev_docs` runs before Quarto)
    python tests/dev.py split-imports nbs/XX.ipynb ...   # move imports out of cells that also run other code

Quarto (which `nbdev_readme` needs) cannot be installed on these machines, hence nbconvert.
"""
import filecmp, os, re, shutil, subprocess, sys, tempfile
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

def _save_widget_state(nb):
    "Keep the state of the widgets the run displayed in the notebook, so GitHub and the docs site can draw them."
    try: from ipywidgets import Widget
    except ImportError: return
    shown = {(o.get('data') or {}).get('application/vnd.jupyter.widget-view+json', {}).get('model_id')
             for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])} - {None}
    if not shown: return
    state = Widget.get_manager_state(drop_defaults=True)
    nb.metadata['widgets'] = {'application/vnd.jupyter.widget-state+json': {**state, 'state': state['state']}}

def execute(*paths):
    "Run notebooks top to bottom from nbs/ (as Jupyter and nbdev_test do), skipping cells flagged slow, gpu, notest or"
    " `eval: false`, and write them back with their outputs; progress bars keep only their last line. Stops at an error."
    " `--slow` first: run the slow cells too (to refresh what they store and draw)."
    import os, time
    skip_re = SKIP
    if paths and paths[0] == '--slow': paths, skip_re = paths[1:], re.compile(SKIP.pattern.replace('slow|', ''), re.M)
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    for path in map(Path, paths):
        nb, shell, t0, cwd = read_nb(path), CaptureShell(), time.monotonic(), os.getcwd()
        def skip(cell):
            if cell.cell_type != 'code' or skip_re.search(cell.source): return cell.cell_type == 'code'
            cell.outputs = []            # execnb keeps a cell's old outputs when it prints nothing now
            return False
        def tidy(cell):
            for o in cell.get('outputs', []):
                if o.get('output_type') == 'stream':
                    o['text'] = '\n'.join(l.rsplit('\r', 1)[-1] for l in ''.join(o['text']).split('\n'))
        os.chdir(path.resolve().parent)
        try: shell.run_all(nb, exc_stop=True, preproc=skip, postproc=tidy)
        finally: os.chdir(cwd)
        _save_widget_state(nb)
        write_nb(nb, path)
        subprocess.run([str(Path(sys.executable).with_name('nbdev_clean')), '--fname', str(path.resolve())], cwd=ROOT, check=True)
        print(f'{path}: executed in {time.monotonic() - t0:.0f} s')

# ---- Stored outputs say what the cells print now ---------------------------------------------------------------
# `outputs` runs each notebook exactly as `nbdev_test` does (cwd nbs/, the repository on sys.path, IN_TEST=1, cells
# flagged slow/gpu/notest or `eval: false` skipped) and, beyond nbdev_test's "no cell raises", fails when
# - a stored text output (stdout/stderr, text/plain, text/markdown; images ignored) differs from what the cell prints
#   now, with numbers masked (timings, noise), progress-bar frames, temporary paths and object ids normalised;
# - a stored output holds a warning or a traceback (a learner should not meet one they need not act on).
# Skipped cells keep their stored outputs (measured elsewhere: on a GPU, or too slow for CI), so only the warning rule
# applies to them. A cell opts out of the comparison (not of the warning rule) with `#| outputs: volatile <reason>`
# (the reason is required).
# Then `outputs` runs every notebook again under `variant_env` (bf16 detection off, another torch thread count) and
# fails where a compared cell prints other text than in the first run — integers included (a thread count, a count of
# CPU flags), fractions and durations masked: those differ between runs and machines by nature.
NUM = re.compile(r'[-+]?(?:\d[\d,_]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?')
WARNING = re.compile(r'\b\w*Warning: |^\s*warnings\.warn\(|Traceback \(most recent call last\)', re.M)
DURATION = re.compile(NUM.pattern + r'\s*(?:ms|s|sec|seconds?|min|minutes?|h|hours?|\w+/s|s/\w+)\b')
TIME_HEADER = re.compile(r'(?:^|\s)(?:s|ms|sec|seconds?|min|minutes?|h|hours?)(?:/\w+)?\s*$|\w+/s\s*$|\bs/\w+')
PROGRESS = re.compile(r'#%\||\|[^|]*\| #/# \[|\bit/s\]|s/it\]')
OPT_OUT = 'outputs:'

def _texts(outputs) -> list:
    "The text a learner reads in `outputs`: [(kind, text)], stdout first, then stderr, then rich outputs in order."
    streams, rich = {'stdout': '', 'stderr': ''}, []
    for o in outputs:
        if o.get('output_type') == 'stream': streams[o.get('name', 'stdout')] += ''.join(o.get('text', ''))
        elif o.get('output_type') == 'error': rich.append(('error', f"{o.get('ename')}: {o.get('evalue')}"))
        else:
            data = o.get('data', {})
            if any(k.startswith('image/') for k in data): continue          # a figure: its repr says nothing
            for mime in ('text/markdown', 'text/plain'):
                if mime in data: rich.append((mime, ''.join(data[mime]))); break
    return [(k, v) for k, v in streams.items() if v] + rich

def normalise(text: str, keep_integers: bool = False) -> str:
    "What must not drift in a cell's printed text: numbers masked, progress frames, temp paths and ids normalised."
    " `keep_integers`: mask only fractions, exponents and durations (`12 s`, `3 ms`), so a count such as a thread count shows."
    import tempfile
    text = re.sub(re.escape(tempfile.gettempdir()) + r'/[^\s\'"]*', '<tmp>', text.replace(str(ROOT), '<repo>'))
    text = re.sub(r'<ipython-input-[^>]*>', '<cell>', text)                 # the cell's source hash
    text = re.sub(r'0x[0-9a-fA-F]+|\b[0-9a-f]{32}\b', '<id>', text)
    lines, timed = [], set()
    for line in text.split('\n'):
        line = line.rsplit('\r', 1)[-1]
        if keep_integers and line.lstrip().startswith('|'):            # a Markdown table: a duration's unit is in its header
            cells = line.split('|')
            if not timed and not re.fullmatch(r'[\s|:-]*', line):
                timed = {i for i, c in enumerate(cells) if TIME_HEADER.search(c)} or {-1}
            else: line = '|'.join(NUM.sub('#', c) if i in timed else c for i, c in enumerate(cells))
        elif keep_integers: timed = set()
        if keep_integers:
            line = DURATION.sub('<t>', line)
            line = NUM.sub(lambda m: m[0] if re.fullmatch(r'[-+]?\d[\d,_]*', m[0]) else '#', line)
        else: line = NUM.sub('#', line)
        if PROGRESS.search(NUM.sub('#', line)): continue
        line = re.sub(r'\s+', ' ', line).strip()
        if line: lines.append(line)
    return '\n'.join(lines)

def _warnings(outputs) -> list:
    return [l.strip() for k, v in _texts(outputs) for l in v.splitlines() if k == 'error' or WARNING.search(l)]

def check_outputs_one(path, record:dict|None=None, against:dict|None=None) -> list:
    "Run one notebook as nbdev_test does and list its problems (empty: stored outputs match)."
    " `record`: filled with what each compared cell printed (integers kept); `against`: such a record from a run under"
    " another environment (`VARIANT`), which every compared cell must print again."
    import os, difflib
    from fastcore.xtras import working_directory
    from nbdev.config import get_config
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from execnb.shell import CaptureShell
    path = Path(path).resolve()
    sys.path.insert(0, str(ROOT)); os.environ['IN_TEST'] = '1'
    flags = set(get_config().tst_flags.split())
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    def skipped(cell):
        d = getattr(cell, 'directives_', {}) or {}
        return ('nbdev_export' + '(' in cell.source or d.get('eval:', [''])[0].lower() == 'false' or bool(flags & d.keys()))
    problems, shell = [], CaptureShell(path)
    def where(cell): return f"{path.name} cell {cell.get('id', cell.idx_)}"
    state = ((nb.metadata.get('widgets') or {}).get('application/vnd.jupyter.widget-state+json') or {}).get('state') or {}
    for cell in nb.cells:                       # GitHub and the docs site draw a widget only from its saved state
        for o in cell.get('outputs', []) if cell.cell_type == 'code' else []:
            view = (o.get('data') or {}).get('application/vnd.jupyter.widget-view+json')
            if view and view.get('model_id') not in state:
                problems.append(f"{where(cell)}: a widget without its saved state (static renderers show its repr): save the"
                                " widget state with the notebook, or show a static picture beside it"); break
    with working_directory(path.parent):
        for cell in nb.cells:
            if cell.cell_type != 'code': continue
            stored = list(cell.get('outputs', []))
            opt = (getattr(cell, 'directives_', {}) or {}).get(OPT_OUT)
            if opt is not None and not ' '.join(opt[1:]).strip():
                problems.append(f"{where(cell)}: `#| outputs: {' '.join(opt)}` needs a reason after the keyword")
            problems += [f'{where(cell)}: stored output holds a warning or traceback: {w[:160]}' for w in _warnings(stored)]
            if skipped(cell): continue
            cell.outputs = []
            shell.cell(cell)
            if shell.exc:
                problems.append(f'{where(cell)}: raised {type(shell.exc).__name__}: {shell.exc}')
                return problems
            if opt is not None: continue
            now = '\n'.join(f'[{k}] {normalise(v, keep_integers=True)}' for k, v in _texts(cell.outputs))
            if record is not None: record[cell.get('id', str(cell.idx_))] = now
            then = (against or {}).get(cell.get('id', str(cell.idx_)))
            if then is not None and then != now:
                diff = list(difflib.unified_diff(then.splitlines(), now.splitlines(), 'before', 'now', n=0, lineterm=''))[2:]
                problems.append(f"{where(cell)}: prints something else on a machine made to look different ({_variant_words()}):"
                                " print a verdict, not the machine's facts, or mark it `#| outputs: volatile <reason>`"
                                " (fractions and durations masked):\n    " + '\n    '.join(d[:160] for d in diff[:12]))
            old = '\n'.join(f'[{k}] {normalise(v)}' for k, v in _texts(stored))
            new = '\n'.join(f'[{k}] {normalise(v)}' for k, v in _texts(cell.outputs))
            if old != new:
                diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), 'stored', 'now', n=0, lineterm=''))[2:]
                problems.append(f"{where(cell)}: stored output differs from what it prints now (numbers masked):\n    "
                                + '\n    '.join(d[:160] for d in diff[:12]) + ('\n    ...' if len(diff) > 12 else ''))
    return problems

def _notebooks(paths) -> list:
    return [Path(p) for p in paths] if paths else sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

# The second run of `outputs`: the same notebooks on a machine made to look different (no native bf16, another torch
# thread count). A cell whose printed text changes (integers included, fractions and durations masked) prints a fact
# about the machine, and would fail the stored-output check on someone else's.
def variant_env(env=None) -> dict:
    "The environment of the second run: bf16 detection off and a thread count other than `env`'s."
    env = dict(os.environ if env is None else env)
    threads = env.get('OMP_NUM_THREADS', '').strip()
    # idle OpenMP threads sleep rather than spin: two notebooks run at once, so extra threads would fight for the cores
    return {'OMP_WAIT_POLICY': 'PASSIVE', **env, 'I2VGAN_CPU_BF16': '0', 'OMP_NUM_THREADS': '3' if threads == '2' else '2'}

def _variant_words() -> str:
    return ', '.join(f'{k}={os.environ.get(k)}' for k in ('I2VGAN_CPU_BF16', 'OMP_NUM_THREADS'))

def _parallel(cmd, paths, workers=2):
    "Run `dev.py cmd nb` for each notebook in its own process, `workers` at a time; exit 1 if any failed."
    " `outputs` runs each notebook twice: as it is, then under `variant_env`, against what the first run printed."
    import time
    from concurrent.futures import ThreadPoolExecutor
    def child(args, env=None):
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, __file__, cmd + '-one', *args], capture_output=True, text=True, env=env)
        cpu = re.search(r'^cpu (\d+) s$', r.stderr, re.M)                 # the child's CPU time: the machine may be shared
        r.stderr = re.sub(r'^cpu \d+ s\n?', '', r.stderr, flags=re.M)
        return r, f'{time.monotonic() - t0:.0f} s' + (f', cpu {cpu[1]} s' if cpu else '')
    def one(p):
        if cmd != 'outputs': return (p, *child([str(p)]))
        with tempfile.TemporaryDirectory() as tmp:
            rec = Path(tmp)/'first.json'
            r, dt = child([str(p), '--record', str(rec)])
            if r.returncode or not rec.exists(): return p, r, dt
            r2, dt2 = child([str(p), '--against', str(rec)], env=variant_env())
            r2.stdout = r.stdout + r2.stdout
            return p, r2, f'{dt}; again with I2VGAN_CPU_BF16=0 and another thread count: {dt2}'
    t0, failed = time.monotonic(), []
    with ThreadPoolExecutor(workers) as ex:
        for p, r, dt in ex.map(one, _notebooks(paths)):
            print(f'{"ok  " if r.returncode == 0 else "FAIL"} {p.name} ({dt})', flush=True)
            if r.returncode: failed.append(p.name); print(r.stdout + r.stderr[-3000:], flush=True)
    print(f'{cmd}: {len(failed)} notebook(s) failed{": " + ", ".join(failed) if failed else ""}; {time.monotonic() - t0:.0f} s')
    if failed: sys.exit(1)

def outputs_one(path, *opts):
    "`outputs-one nb [--record FILE | --against FILE]`: one notebook's check; record what it printed, or compare with that."
    import json
    record = against = None
    if opts[:1] == ('--record',): record = {}
    if opts[:1] == ('--against',): against = json.loads(Path(opts[1]).read_text())
    problems = check_outputs_one(path, record, against)
    if record is not None: Path(opts[1]).write_text(json.dumps(record))
    _report(problems)

def _report(problems):
    import resource
    cpu = sum(getattr(resource.getrusage(w), f) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) for f in ('ru_utime', 'ru_stime'))
    print(f'cpu {cpu:.0f} s', file=sys.stderr)
    for p in problems: print('FAIL:', p)
    if problems: sys.exit(1)

# ---- nbdev's documentation processing ----------------------------------------------------------------------------
# `nbdev_docs` / `nbdev_preview` first run nbdev's processors over every notebook (executing imports, exported cells
# and show_doc cells from the repository root), then Quarto. Quarto cannot be installed here, so `docs` runs the
# processors alone, on a copy of the repository inside an empty folder, and fails on an error, on nbdev's warning
# that a cell mixes imports with other code (nbdev would execute that code), and on any file written outside the copy.
def check_docs_one(path) -> list:
    import os, warnings
    from nbdev.processors import FilterDefaults
    from execnb.nbio import read_nb
    path = Path(path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        outer = Path(tmp)/'outside'; repo = outer/'repo'; outer.mkdir()
        shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns('.git', '.venv', '_proc', '_docs', 'outputs', '__pycache__', '.ipynb_checkpoints'))
        cwd = os.getcwd(); os.chdir(repo); sys.path.insert(0, str(repo)); os.environ['IN_TEST'] = '1'
        problems = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            try: FilterDefaults()(read_nb(repo/'nbs'/path.name))
            except Exception as e:
                cause = e.__cause__ or e
                problems.append(f'{path.name}: nbdev processing failed: {str(e).splitlines()[0]} -> {type(cause).__name__}: {cause}')
            finally: os.chdir(cwd)
        ids = {c.source.strip(): c.get('id', '?') for c in read_nb(path).cells}
        mixed = [str(w.message).split('---')[1].strip() for w in caught if 'imports and other code' in str(w.message)]
        problems[:0] = [f"{path.name} cell {ids.get(m, '?')}: mixes imports with other code (nbdev runs such a cell when it renders"
                        f"{'' if re.search(r'^(import|from) ', m, re.M) else '; its imports are nested: move them'}): "
                        + m.splitlines()[0][:100] for m in mixed]
        flagged = {ids.get(m, '?') for m in mixed}
        problems += [f"{path.name} cell {c.get('id', '?')}: mixes imports with other code: `python tests/dev.py split-imports` moves them"
                     for c in read_nb(path).cells if c.cell_type == 'code' and 'nbdev_export' + '(' not in c.source
                     and c.get('id', '?') not in flagged and _mixed_imports(c.source) is not None]
        stray = [p.name for p in outer.iterdir() if p.name != 'repo']
        if stray: problems.append(f'{path.name}: processing wrote outside the repository: {stray}')
    return problems

# ---- Imports in cells of their own -------------------------------------------------------------------------------
def _mixed_imports(src:str):
    "(syntax tree, top-level imports) of an unexported code cell that imports and also runs other code, else None."
    import ast
    try: tree = ast.parse('\n'.join('' if DIRECTIVE.match(l) or l.lstrip().startswith(('%', '!')) else l for l in src.split('\n')))
    except SyntaxError: return None
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    exported = any(re.match(r'^\s*#\|\s*(export|exporti|exports)\b', l) for l in src.split('\n'))
    if exported or not imports or len(imports) == len(tree.body): return None   # nbdev runs exported cells whole anyway
    return tree, imports

def split_imports(*paths):
    "Move the import statements of a code cell that also runs other code into a new cell just before it (idempotent)."
    import ast, json, uuid
    for path in map(Path, paths):
        nb, changed = json.loads(path.read_text()), 0
        cells = []
        for cell in nb['cells']:
            src = ''.join(cell['source'])
            if cell['cell_type'] != 'code' or not src.strip() or 'nbdev_export' + '(' in src:   # nbdev never runs the latter
                cells.append(cell); continue
            found = _mixed_imports(src)
            if found is None: cells.append(cell); continue
            tree, imports = found
            lines, imp_lines = src.split('\n'), []
            others = {i for n in tree.body if n not in imports for i in range(n.lineno - 1, n.end_lineno)}
            for n in sorted(imports, key=lambda n: (n.lineno, n.col_offset), reverse=True):
                if n.lineno == n.end_lineno and n.lineno - 1 in others:     # `a = 1; import b`: cut the statement out
                    line = lines[n.lineno - 1]
                    imp_lines.insert(0, line[n.col_offset:n.end_col_offset])
                    before = line[:n.col_offset].strip().rstrip(';').rstrip()
                    after = line[n.end_col_offset:].lstrip().lstrip(';').lstrip()
                    joined = '; '.join(x for x in (before, after) if x)
                    lines[n.lineno - 1] = line[:len(line) - len(line.lstrip())] + joined if joined else None
                else:
                    imp_lines[:0] = lines[n.lineno - 1:n.end_lineno]
                    for i in range(n.lineno - 1, n.end_lineno): lines[i] = None
            directives = [l for l in lines if l is not None and DIRECTIVE.match(l)]
            keep_dirs = [l for l in directives if re.match(r'^\s*#\|\s*(hide|slow|gpu|notest|eval:|echo:|include:|output:)', l)]
            imp = '\n'.join(keep_dirs + imp_lines)
            rest = '\n'.join(l for l in lines if l is not None).strip('\n')
            new = dict(cell_type='code', execution_count=None, id=uuid.uuid4().hex[:8], metadata={}, outputs=[],
                       source=imp.splitlines(True))
            cell['source'] = rest.splitlines(True)
            cells += [new, cell]; changed += 1
        nb['cells'] = cells
        if changed:
            path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
            subprocess.run([str(Path(sys.executable).with_name('nbdev_clean')), '--fname', str(path.resolve())], cwd=ROOT, check=True)
        print(f'{path}: {changed} cell(s) split')

if __name__ == '__main__':
    cmd, args = (sys.argv[1] if len(sys.argv) > 1 else 'check'), sys.argv[2:]
    if cmd == 'execute': execute(*args)
    elif cmd in ('outputs', 'docs'): _parallel(cmd, args)
    elif cmd == 'outputs-one': outputs_one(*args)
    elif cmd == 'docs-one': _report(check_docs_one(args[0]))
    elif cmd == 'split-imports': split_imports(*args)
    else: {'readme': write_readme, 'check': check}[cmd]()
