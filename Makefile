# The README's commands. Each one creates .venv and installs the package (with its dev extras) if needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-browser lab readme export clean-nbs docs

$(STAMP): settings.ini setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## Train a tiny I2V-GAN on the built-in synthetic world (CPU), translate unseen clips, score them, write outputs/demo/.
demo: $(STAMP)
	$(VENV)/bin/i2vgan demo

## Everything: library in sync with notebooks, README in sync with index.ipynb, the docs' notebook processing,
## notebook tests (with their stored outputs checked), pytest.
# `dev.py outputs` runs every notebook's tests exactly as `nbdev_test` does (cwd nbs/, cells flagged slow, gpu,
# notest or `eval: false` skipped, two notebooks at a time) and also fails where a stored output no longer says
# what its cell prints, or holds a warning; running nbdev_test as well would only run every notebook twice.
# Each notebook then runs a second time on a machine made to look different (I2VGAN_CPU_BF16=0, another torch thread
# count): a cell whose printed text changes prints a fact about the machine and would fail on someone else's.
# One torch thread per process: two notebooks run at once on two cores, and oversubscribed
# OpenMP threads spin (measured: 04_train took 4x longer with two threads per notebook).
test: export OMP_NUM_THREADS = 1
test: $(STAMP)
	$(PY) tests/dev.py check
	$(PY) tests/dev.py docs
	$(PY) tests/dev.py outputs
	$(VENV)/bin/pytest tests/ -q -m "not browser"
	@test -x /usr/bin/chromium || echo 'browser test skipped: no /usr/bin/chromium (enable it: apt-get install chromium)'
	$(VENV)/bin/pytest tests/ -q -m browser

## The notebooks as a learner runs them: JupyterLab in headless Chromium (skipped without /usr/bin/chromium).
test-browser: export OMP_NUM_THREADS = 1
test-browser: $(STAMP)
	@test -x /usr/bin/chromium || echo 'browser test skipped: no /usr/bin/chromium (enable it: apt-get install chromium)'
	$(VENV)/bin/pytest tests/ -q -m browser

lab: $(STAMP)
	$(VENV)/bin/jupyter lab nbs/

## Regenerate README.md from nbs/index.ipynb (nbconvert; Quarto cannot be installed here).
readme: $(STAMP)
	$(PY) tests/dev.py readme

## Export the library from the notebooks and clean them (run before each commit).
export: $(STAMP)
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean

## The documentation site in _docs/ (needs Quarto: https://quarto.org). nbdev_docs also renders README.md with
## Quarto, so it is regenerated the project's way afterwards.
docs: $(STAMP)
	$(VENV)/bin/nbdev_docs
	$(PY) tests/dev.py readme
