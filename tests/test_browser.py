"""The learner's path, for real: JupyterLab in headless Chromium, driven by Playwright.

`nbdev_test` runs cells in a bare kernel; it never shows whether a widget renders or responds. These tests
start JupyterLab on a free loopback port (temporary token, temporary config/runtime/settings dirs) over a
temporary copy of nbs/ (JupyterLab autosaves outputs, so the repo's notebooks are never touched), open each
notebook in Chromium, run all cells from the Run menu, and fail with the traceback of any error output.
For nbs/00_data.ipynb they also move the `TripletViewer` slider and check that the image changes, then save
the widget's screenshot to assets/triplet_viewer.png for the README; for nbs/05_metrics.ipynb the same with the
`ResultsViewer` (assets/results_viewer_widget.png).

Cells that `nbdev_test` skips (flags in settings.ini's `tst_flags`, `#| eval: false`, `nbdev_export(`)
are removed from the copies.  Run with `make test-browser` (or `pytest tests/ -m browser`); needs
Debian's Chromium (`apt-get install chromium`) and `pip install playwright`.
Environment: I2VGAN_CHROMIUM (default /usr/bin/chromium), I2VGAN_BROWSER_TIMEOUT (seconds per notebook, default 600).
"""
import configparser, io, json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import nbformat, numpy as np, pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
DATA_NB, METRICS_NB = '00_data.ipynb', '05_metrics.ipynb'
ASSET, RESULTS_ASSET = ROOT/'assets'/'triplet_viewer.png', ROOT/'assets'/'results_viewer_widget.png'
CHROMIUM = os.environ.get('I2VGAN_CHROMIUM', '/usr/bin/chromium')
NB_TIMEOUT = float(os.environ.get('I2VGAN_BROWSER_TIMEOUT', 600))
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--no-first-run', '--disable-quic', '--disable-sync', '--disable-dev-shm-usage']
VIEWER = '.jp-OutputArea-output .jupyter-widgets.i2vgan-triplet-viewer'  # rendered widget, never the text repr
RESULTS_VIEWER = '.jp-OutputArea-output .jupyter-widgets.i2vgan-results-viewer'

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                 reason=f'{CHROMIUM} not found; enable with `apt-get install chromium`')]

def notebooks():
    "Notebooks that `nbdev_test` would run (names starting with _ or . skipped), relative to nbs/."
    return [p.relative_to(NBS).as_posix() for p in sorted(NBS.rglob('*.ipynb'))
            if not any(s.startswith(('_', '.')) for s in p.relative_to(NBS).parts)]

# ---------------------------------------------------------------- the temporary copy of nbs/
def skip_flags():
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())

def skipped_by_nbdev_test(cell, flags) -> bool:
    "The rule of nbdev.test.test_nb: code cells with a skip flag, `#| eval: false`, or an `nbdev_export(` call."
    from nbdev.process import extract_directives
    if cell.cell_type != 'code': return False
    if 'nbdev_export(' in cell.source: return True
    d = extract_directives(cell, remove=False)
    return d.get('eval:', [''])[0].lower() == 'false' or bool(flags & d.keys())

def write_test_copy(src:Path, dst:Path, flags, extra_code=()):
    "Copy notebook `src` to `dst` without the cells nbdev_test skips (and without outputs), plus `extra_code` cells."
    nb = nbformat.read(src, as_version=4)
    nb.cells = [c for c in nb.cells if not skipped_by_nbdev_test(c, flags) and c.source.strip()]
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None
    nb.cells += [nbformat.v4.new_code_cell(s) for s in extra_code]
    # jupytext-made notebooks may lack a kernelspec; JupyterLab would then ask which kernel to start
    nb.metadata.setdefault('kernelspec', {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'})
    nb.metadata.pop('widgets', None)                                   # stale widget state from the last save
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)

def lab_settings(folder:Path):
    "User settings for the temporary JupyterLab: no news or update checks, no toasts, all cells in the DOM."
    s = {'@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False,
                                                         'doNotDisturbMode': True},
         '@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'}}
    for name, v in s.items():
        f = folder/f'{name}.jupyterlab-settings'; f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(v))

# ---------------------------------------------------------------- JupyterLab server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class Lab:
    "A JupyterLab server over `root` on 127.0.0.1; `stop()` shuts it and its kernels down."
    def __init__(self, root:Path, tmp:Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        self.url = f'http://127.0.0.1:{self.port}'
        self.log = tmp/'jupyterlab.log'
        self.runtime = tmp/'runtime'
        lab_settings(tmp/'lab-settings')
        venv_bin = Path(sys.executable).parent
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp/'config'), JUPYTER_DATA_DIR=str(tmp/'data'),
                   JUPYTER_RUNTIME_DIR=str(self.runtime), IPYTHONDIR=str(tmp/'ipython'),
                   JUPYTERLAB_SETTINGS_DIR=str(tmp/'lab-settings'), JUPYTERLAB_WORKSPACES_DIR=str(tmp/'workspaces'),
                   PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}", PYTHONUNBUFFERED='1')
        env.pop('JUPYTER_PATH', None); env.pop('JUPYTER_TOKEN', None)
        cmd = [str(venv_bin/'jupyter'), 'lab', '--no-browser', '--ServerApp.open_browser=False',
               '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={self.port}', '--ServerApp.port_retries=0',
               f'--IdentityProvider.token={self.token}', f'--ServerApp.root_dir={root}',
               '--ServerApp.terminals_enabled=False', '--LabApp.expose_app_in_browser=True',
               '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate']
        if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')   # CI runs as root
        self.logf = open(self.log, 'w')
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + 120
        while True:
            try:
                self.api('GET', '/api/status'); break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop(); raise RuntimeError(f'JupyterLab did not start:\n{self.log_text()[-3000:]}')
                time.sleep(0.3)

    def api(self, method, path):
        req = urllib.request.Request(self.url + path, method=method, headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_text(self, start=0) -> str:
        self.logf.flush()
        return self.log.read_text(errors='replace')[start:]

    def shutdown_kernels(self):
        try:
            for k in self.api('GET', '/api/kernels'): self.api('DELETE', f"/api/kernels/{k['id']}")
        except OSError: pass

    def kernel_pids(self):
        "Kernels this server started (their command line names a connection file in our runtime dir)."
        pids = []
        for p in Path('/proc').glob('[0-9]*'):
            try:
                if str(self.runtime) in (p/'cmdline').read_bytes().decode(errors='replace'): pids.append(int(p.name))
            except OSError: pass
        return pids

    def stop(self):
        if self.proc.poll() is None: self.shutdown_kernels()
        try: os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError: pass
        try: self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL); self.proc.wait(5)
        for pid in self.kernel_pids():                     # kernels run in their own sessions; leave none behind
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
        self.logf.close()

# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='session')
def project(tmp_path_factory):
    "A temporary copy of the project's nbs/ (cells nbdev_test skips removed), assets/, results/ (committed runs the notebooks read) and scripts/ (12 reads its plan from one), settings.ini."
    tmp = tmp_path_factory.mktemp('i2vgan_browser')
    shutil.copytree(NBS, tmp/'nbs', ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '*.ipynb'))
    for d in ('assets', 'results', 'scripts'):
        if (ROOT/d).is_dir(): shutil.copytree(ROOT/d, tmp/d, ignore=shutil.ignore_patterns('__pycache__'))
        else: (tmp/d).mkdir()
    shutil.copy(ROOT/'settings.ini', tmp/'settings.ini')    # notebooks find the project root (assets/, results/) by it, as nbdev does
    flags = skip_flags()
    for name in notebooks(): write_test_copy(NBS/name, tmp/'nbs'/name, flags)
    return tmp

@pytest.fixture(scope='session')
def lab(project, tmp_path_factory):
    server = Lab(project/'nbs', tmp_path_factory.mktemp('jupyter'))
    try: yield server
    finally: server.stop()

@pytest.fixture(scope='session')
def browser():
    try: from playwright.sync_api import sync_playwright
    except ImportError: pytest.fail('playwright is not installed: `pip install playwright` (a dev requirement)')
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try: yield b
        finally: b.close()

@pytest.fixture
def page(browser, lab):
    ctx = browser.new_context(viewport={'width': 1400, 'height': 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    try: yield pg
    finally:
        ctx.close()
        lab.shutdown_kernels()     # free the cores for the next notebook

# ---------------------------------------------------------------- driving JupyterLab
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')

STATE_JS = """() => {
  const nb = window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.content.model) return null;
  const cells = [], errors = [];
  let i = 0;
  for (const c of nb.content.model.cells) {
    if (c.type !== 'code') continue;
    i += 1;
    cells.push(c.executionCount);
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push({cell: i, source: c.sharedModel.getSource(), ename: o.ename,
                                                  evalue: o.evalue, traceback: (o.traceback || []).join('\\n')});
    }
  }
  const prompts = [...nb.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim());
  const sc = nb.sessionContext, kernel = sc && sc.session && sc.session.kernel;
  const ready = nb.context.isReady && sc.isReady && !!kernel;
  const dialogs = [...document.querySelectorAll('.jp-Dialog')].map(d => d.innerText.trim());
  return {path: nb.context.path, cells, errors, prompts, kernel: ready ? kernel.status : 'starting', dialogs};
}"""

def state(page): return page.evaluate(STATE_JS)

def format_errors(name, errors) -> str:
    out = [f'{name}: {len(errors)} error output(s) in JupyterLab']
    for e in errors:
        first = next((l for l in e['source'].splitlines() if l.strip() and not l.startswith('#|')), '')
        tb = ANSI.sub('', e['traceback']).strip().splitlines()
        out += [f"--- code cell {e['cell']} (`{first[:80]}`): {e['ename']}: {e['evalue']}", *tb[-25:]]
    return '\n'.join(out)

def open_notebook(page, lab, name):
    "Open `name` in a fresh JupyterLab workspace and wait for its kernel to be idle."
    ws = re.sub(r'\W', '-', name)
    page.goto(f'{lab.url}/lab/workspaces/{ws}/tree/{name}?reset&token={lab.token}')
    page.wait_for_selector('.jp-Notebook .jp-Cell')
    deadline = time.time() + 120
    while True:
        s = state(page)
        if s and s['path'] == name and s['kernel'] == 'idle' and not s['dialogs']: return
        if s and s['dialogs']:            # e.g. "Select Kernel": accept the default (Python 3)
            page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').first.click()
        if time.time() > deadline: raise AssertionError(f'{name}: kernel never became idle; last state {s}')
        time.sleep(0.5)

def run_all(page, lab, name, timeout=NB_TIMEOUT):
    "Run → Run All Cells, wait until nothing is running, fail with the traceback of any error output."
    page.locator('.lm-MenuBar-itemLabel', has_text=re.compile(r'^Run$')).click()
    page.locator('.lm-Menu-itemLabel', has_text=re.compile(r'^Run All Cells$')).click()
    t0, s = time.time(), None
    while time.time() - t0 < timeout:
        time.sleep(0.5)
        s = state(page)
        if s['dialogs']: raise AssertionError(f'{name}: JupyterLab dialog while running: {s["dialogs"]}\n'
                                              f'{lab.log_text()[-2000:]}')
        if s['kernel'] in ('dead', 'terminating'): raise AssertionError(f"{name}: the kernel died ({s['kernel']})")
        running = any('*' in p for p in s['prompts'])
        if not running and s['kernel'] == 'idle' and (s['errors'] or all(c is not None for c in s['cells'])): break
    else:
        stuck = [i + 1 for i, p in enumerate(s['prompts']) if '*' in p] if s else []
        raise AssertionError(f'{name}: not finished after {timeout:.0f} s (code cells still running/queued: {stuck[:5]})')
    if s['errors']: raise AssertionError(format_errors(name, s['errors']))
    return time.time() - t0

def pixels(png:bytes) -> np.ndarray: return np.asarray(Image.open(io.BytesIO(png)).convert('RGB'))

def same_image(a:bytes, b:bytes) -> bool:
    pa, pb = pixels(a), pixels(b)
    return pa.shape == pb.shape and np.array_equal(pa, pb)

LISTEN_JS = """() => {
  // collect what the kernel prints while handling widget messages (comm_msg): JupyterLab shows it in no cell
  const sc = window.jupyterapp.shell.currentWidget.sessionContext;
  window.__i2vgan_comm_output = [];
  sc.iopubMessage.connect((_, m) => {
    if (!m.parent_header || m.parent_header.msg_type !== 'comm_msg') return;
    const t = m.header.msg_type;
    if (t === 'stream' && m.content.name === 'stderr') window.__i2vgan_comm_output.push(m.content.text);
    if (t === 'error') window.__i2vgan_comm_output.push(m.content.traceback.join('\\n'));
  });
}"""

KERNEL_ERR = re.compile(r'Traceback \(most recent call last\)|Exception in comm_msg|Error in observer')

def settled_box(locator, tries=20):
    "The element's bounding box once two reads 0.25 s apart agree (the layout has stopped moving)."
    prev = None
    for _ in range(tries):
        box = locator.bounding_box()
        if box == prev: return box
        prev = box; time.sleep(0.25)
    return prev

def check_viewer(page, wait=20, selector=VIEWER):
    """Find the rendered viewer, drag its slider, require a different image and no error from the callback.
    Returns a screenshot of the whole widget (slider, toggle, frames) after the move."""
    img = page.locator(selector)
    img.first.wait_for(state='visible', timeout=60_000)
    viewer = img.first
    assert viewer.evaluate('e => !e.closest(".jp-RenderedText")'), 'found only the text fallback, not the widget'
    area = viewer.locator('xpath=ancestor::div[contains(concat(" ", @class, " "), " jp-OutputArea-output ")][1]')
    slider = area.locator('.widget-slider').first
    handle, track = slider.locator('.noUi-handle').first, slider.locator('.noUi-base').first
    readout = lambda: slider.locator('.widget-readout').first.inner_text().strip()
    stderr_outputs = lambda: area.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    kernel_output = lambda: ANSI.sub('', ''.join(page.evaluate('() => window.__i2vgan_comm_output')))
    page.evaluate(LISTEN_JS)
    viewer.scroll_into_view_if_needed()
    time.sleep(0.5)
    before, value0, err0 = viewer.screenshot(), readout(), len(stderr_outputs())
    for attempt in range(3):   # the page may still be laying out (a big image arriving moves the slider): settle, drag
        handle.scroll_into_view_if_needed()   # a tall image can leave the slider above the viewport's top
        h, t = settled_box(handle), settled_box(track)
        # drag the handle (a learner's mouse) to a quarter of the track away from where it is
        x0, y = h['x'] + h['width']/2, h['y'] + h['height']/2
        x1 = t['x'] + t['width'] * (0.75 if x0 < t['x'] + t['width']/2 else 0.25)
        page.mouse.move(x0, y); page.mouse.down(); page.mouse.move(x1, y, steps=8); page.mouse.up()
        time.sleep(0.5)
        if readout() != value0: break
    deadline, after = time.time() + wait, before
    while time.time() < deadline:
        time.sleep(0.5)
        after = viewer.screenshot()
        if not same_image(before, after) or KERNEL_ERR.search(kernel_output()): break
    time.sleep(0.5)
    value1, log, errs = readout(), kernel_output(), stderr_outputs()[err0:]
    problems = []
    if value1 == value0: problems.append(f'the slider did not move (readout {value0!r})')
    if same_image(before, after): problems.append(f'the image did not change after moving the slider {value0} -> {value1}')
    if KERNEL_ERR.search(log): problems.append(f'the kernel reported an error in the slider callback:\n{log.strip()[-3000:]}')
    if errs: problems.append('error output in the widget:\n' + '\n'.join(errs)[-3000:])
    assert not problems, f'viewer {selector}: ' + '\n'.join(problems)
    return area.screenshot()

def save_asset(png:bytes, path=ASSET):
    "Write the README's screenshot, unless the file already holds the same pixels (no churn in git)."
    if path.exists() and same_image(path.read_bytes(), png): return
    path.parent.mkdir(exist_ok=True)
    Image.open(io.BytesIO(png)).convert('RGB').save(path, optimize=True)

# ---------------------------------------------------------------- tests
def test_data_notebook_and_viewer(page, lab):
    "nbs/00_data.ipynb runs in JupyterLab; the TripletViewer renders and its slider changes the frames."
    assert (NBS/DATA_NB).exists(), f'{NBS/DATA_NB} is missing'
    open_notebook(page, lab, DATA_NB)
    run_all(page, lab, DATA_NB)
    save_asset(check_viewer(page))
    assert ASSET.stat().st_size < 1_000_000

def test_metrics_notebook_and_results_viewer(page, lab):
    "nbs/05_metrics.ipynb runs in JupyterLab; the ResultsViewer renders and its frame slider changes the picture."
    open_notebook(page, lab, METRICS_NB)
    run_all(page, lab, METRICS_NB)
    save_asset(check_viewer(page, wait=40, selector=RESULTS_VIEWER), RESULTS_ASSET)
    assert RESULTS_ASSET.stat().st_size < 1_000_000

@pytest.mark.parametrize('name', [n for n in notebooks() if n not in (DATA_NB, METRICS_NB)])
def test_notebook_runs(page, lab, name):
    "Each notebook runs top to bottom in JupyterLab's kernel (cells nbdev_test skips removed) without errors."
    open_notebook(page, lab, name)
    run_all(page, lab, name)

BROKEN_VIEWER = """\
import ipywidgets as W, numpy as np, io
from PIL import Image as PILImage
def png(i):
    a = np.zeros((32, 96, 3), np.uint8); a[:, 8*i:8*i + 8] = 255
    b = io.BytesIO(); PILImage.fromarray(a).save(b, 'png'); return b.getvalue()
slider, image = W.IntSlider(value=2, min=0, max=11, continuous_update=False), W.Image(value=png(2), format='png')
image.add_class('i2vgan-triplet-viewer')
def render(change): raise ZeroDivisionError('broken viewer callback')   # the bug the check must catch
slider.observe(render, names='value')
W.VBox([slider, image])"""

def test_check_viewer_catches_a_broken_callback(page, lab, project):
    "Negative control: a viewer whose slider callback raises must fail `check_viewer` (image unchanged, error logged)."
    name = '_broken_viewer.ipynb'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BROKEN_VIEWER)])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)', 'language': 'python'}
    nbformat.write(nb, project/'nbs'/name)
    open_notebook(page, lab, name)
    run_all(page, lab, name)
    with pytest.raises(AssertionError) as e: check_viewer(page, wait=8)
    msg = str(e.value)
    assert 'the image did not change' in msg and 'ZeroDivisionError' in msg, msg
