#!/usr/bin/env python
"""Quarto's pre-render step for the documentation site (`nbs/_quarto.yml`): the pictures in `assets/`.

The notebooks show the repository's pictures as `../assets/…`, which is right for Jupyter and GitHub (the notebooks
live in `nbs/`) but points outside Quarto's project, so Quarto would not publish them. `nbdev_docs` renders a copy
of the notebooks in `_proc/`; run from there (Quarto runs pre-render steps in the project folder), this copies
`assets/` into the project and points the copies' links at it. Run from the notebooks' own folder it changes
nothing: those are the sources.
"""
import re, shutil, sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LINK = re.compile(r'(\]\(|src=\\?["\'])\.\./assets/')

def publish_assets(project:Path, repo:Path=REPO) -> list:
    "Copy `repo/assets` into `project/assets` and rewrite `../assets/` links in its pages; returns the pages changed."
    project = Path(project).resolve()
    if project == (repo / "nbs").resolve():
        print("docs_assets: the project is nbs/ itself (the sources): nothing copied or rewritten"); return []
    shutil.copytree(repo / "assets", project / "assets", dirs_exist_ok=True)
    changed = []
    for page in sorted(p for ext in ("ipynb", "qmd", "md") for p in project.glob(f"*.{ext}")):
        text = page.read_text(encoding="utf-8")
        new = LINK.sub(lambda m: m[1] + "assets/", text)
        if new != text: page.write_text(new, encoding="utf-8"); changed.append(page.name)
    print(f"docs_assets: assets/ copied into {project}; links rewritten in {', '.join(changed) or 'no page'}")
    return changed

if __name__ == "__main__": publish_assets(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
