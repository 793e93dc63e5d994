"""The public surface: everything public is exported, and the core stays free of heavy imports."""

from __future__ import annotations

import ast
import importlib
import inspect
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import throttle_lab
from throttle_lab._moved import PLUMBING


def test_all_is_complete_and_importable() -> None:
    exported = set(throttle_lab.__all__)
    assert len(exported) == len(throttle_lab.__all__), "duplicates in __all__"
    for name in exported:
        assert hasattr(throttle_lab, name), name
    # Every public class or function of the core and client modules is either on the package's surface or
    # plumbing that lives in its own module -- nothing is forgotten in between.
    modules = ["core.runtime", "core.events", "core.trace", "core.throttler", "core.keyed_throttler"]
    modules += ["core.gate", "core.accounting"]
    modules += ["client.retry_after", "client.backoff", "client.adaptive", "client.retry", "client.tokens"]
    modules += [
        f"core.limiters.{m.name}"
        for m in pkgutil.iter_modules(throttle_lab.core.limiters.__path__)
        if not m.name.startswith("_")
    ]
    plumbing = set(PLUMBING)
    for module_name in modules:
        module = importlib.import_module(f"throttle_lab.{module_name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert name in exported or name in plumbing or module_name in LOW_LEVEL, (
                    f"throttle_lab.{module_name}.{name} is neither exported nor listed as plumbing"
                )


# Modules whose names are for people extending throttle_lab, imported from the module itself.
LOW_LEVEL = {"core.gate", "core.accounting", "client.tokens", "client.retry"}


def test_the_surface_is_small_enough_to_hold_in_your_head() -> None:
    # 42: the 0.2 surface, plus Tokens and estimate_tokens for the split (Anthropic) budgets.  Layers with
    # a surface of their own (shared, batch, lab) keep it in their package.
    assert len(throttle_lab.__all__) <= 42
    assert not {"emit", "current_request", "is_recording"} & set(throttle_lab.__all__)
    assert not [name for name in throttle_lab.__all__ if name.endswith("Statistics")]


@pytest.mark.parametrize("name", sorted(PLUMBING))
def test_plumbing_moved_to_its_module_and_the_0_1_spelling_still_works(name: str) -> None:
    home = importlib.import_module(f"throttle_lab.{PLUMBING[name]}")
    with pytest.warns(DeprecationWarning, match=f"moved to throttle_lab.{PLUMBING[name]}.{name}"):
        assert getattr(throttle_lab, name) is getattr(home, name)


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        throttle_lab.nope  # noqa: B018


def test_core_imports_no_plotting_widgets_or_server() -> None:
    code = (
        "import sys, throttle_lab, throttle_lab.lab.naive\n"
        "heavy = ('matplotlib', 'ipywidgets', 'pandas', 'mock_server', 'redis')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_layers_import_only_downwards() -> None:
    # core <- client <- shared <- lab: a module may import its own layer and the ones before it, never after.
    order = {"core": 0, "client": 1, "shared": 2, "lab": 3}
    root = pathlib.Path(throttle_lab.__file__).parent
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in order:
            continue
        layer = order[parts[0]]
        package = ".".join(("throttle_lab", *parts[:-1]))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                bits = target.split(".")
                if bits[0] == "throttle_lab" and len(bits) > 1 and bits[1] in order:
                    assert order[bits[1]] <= layer, f"{path.relative_to(root)} imports {target}"


def test_the_0_1_import_paths_still_work_and_say_where_things_went() -> None:
    code = (
        "import warnings\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    import throttle_lab.experiments as old\n"
        "    from throttle_lab.limiters.gcra import GCRA\n"
        "    from throttle_lab import plots\n"
        "import throttle_lab, throttle_lab.lab.experiments as new\n"
        "assert old is new and GCRA is throttle_lab.GCRA and plots.__name__ == 'throttle_lab.lab.plots'\n"
        "assert old.__spec__.name == 'throttle_lab.lab.experiments'\n"
        "print(sorted({str(w.message).split()[0] for w in caught if w.category is DeprecationWarning}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    moved = [
        "throttle_lab.experiments",
        "throttle_lab.limiters",
        "throttle_lab.limiters.gcra",
        "throttle_lab.plots",
    ]
    assert result.stdout.strip() == repr(moved)
