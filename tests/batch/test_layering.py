"""The batch layer imports core and client only: never the lab, never matplotlib or ipywidgets."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BATCH = ROOT / "throttle_lab" / "batch"


def test_importing_the_batch_package_loads_no_plotting_and_no_lab() -> None:
    code = (
        "import sys, throttle_lab.batch; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'ipywidgets', 'IPython')"
        " or m.startswith('throttle_lab.lab')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"


def test_no_module_of_the_batch_package_imports_the_lab() -> None:
    for path in BATCH.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                assert not target.startswith("..lab") and "throttle_lab.lab" not in target, path
