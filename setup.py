"""Packaging hook: the wheel carries the lessons (``notebooks/*.ipynb``) as package data.

Everything else is declared in ``pyproject.toml``; this file only extends ``build_py``.

Why a build_py hook and not ``[tool.setuptools.data-files]``: data-files land under ``sys.prefix/share/...``,
a place that depends on the installer (``--user``, venvs, conda) and that ``importlib.resources`` cannot
find; and why not moving them into the package: the notebooks stay in ``notebooks/`` at the top of the
checkout, where nbval, ``scripts/lessons.sh`` and the README expect them.  So at build time they are copied
into ``throttle_lab/lab/notebooks/`` inside the build directory -- the wheel then holds them as package
data, found with ``importlib.resources`` (see ``throttle_lab/lab/lessons.py``).  An editable install
(``pip install -e .``) copies nothing: ``lessons.py`` reads the checkout's ``notebooks/`` directly.  The
sdist carries ``notebooks/`` through ``MANIFEST.in``, so a wheel built from it has them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE / "notebooks"
#: Where the notebooks go inside the built package (keep in step with throttle_lab/lab/lessons.py).
PACKAGED = Path("throttle_lab", "lab", "notebooks")


class build_py_with_lessons(build_py):  # lower case: setuptools names its commands so
    """``build_py``, then copy ``notebooks/*.ipynb`` into the built package (not in editable mode)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the editable package reads the checkout's notebooks/ itself
        lessons = sorted(NOTEBOOKS.glob("*.ipynb"))
        if not lessons:
            raise SystemExit(f"no lessons in {NOTEBOOKS}: the wheel must carry them (is notebooks/ missing?)")
        target = Path(self.build_lib) / PACKAGED
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*.ipynb"):  # a lesson removed since the last build must not linger
            stale.unlink()
        for notebook in lessons:
            shutil.copyfile(notebook, target / notebook.name)


setup(cmdclass={"build_py": build_py_with_lessons})
