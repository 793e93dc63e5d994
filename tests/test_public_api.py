"""The public surface: everything public is exported, and the core stays free of heavy imports."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import throttle_lab


def test_all_is_complete_and_importable() -> None:
    exported = set(throttle_lab.__all__)
    assert len(exported) == len(throttle_lab.__all__), "duplicates in __all__"
    for name in exported:
        assert hasattr(throttle_lab, name), name
    # Every public class or function defined in a core module is exported from the package.
    core = ["runtime", "events", "trace", "throttler", "retry_after", "backoff", "adaptive"]
    core += [
        f"limiters.{m.name}"
        for m in pkgutil.iter_modules(throttle_lab.limiters.__path__)
        if not m.name.startswith("_")
    ]
    for module_name in core:
        module = importlib.import_module(f"throttle_lab.{module_name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert name in exported, f"throttle_lab.{module_name}.{name} is not re-exported"


def test_core_imports_no_plotting_widgets_or_server() -> None:
    code = (
        "import sys, throttle_lab, throttle_lab.naive\n"
        "heavy = ('matplotlib', 'ipywidgets', 'pandas', 'mock_server', 'redis')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
