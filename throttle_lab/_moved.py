"""The import paths of throttle_lab 0.1 keep working, with a ``DeprecationWarning`` naming the new one.

0.2 grouped the modules by layer (``core``, ``client``, ``shared``, ``lab``), so ``throttle_lab.experiments``
is now ``throttle_lab.lab.experiments`` and ``throttle_lab.limiters.gcra`` is
``throttle_lab.core.limiters.gcra``.  Names imported from the package itself (``from throttle_lab import
Throttler``) never moved.  An old path is an *alias*: importing it gives the very module object the new path
gives (no second copy with its own state), so ``isinstance`` checks and module-level registries agree.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import CodeType, ModuleType

__all__ = ["MOVED", "PLUMBING", "install", "new_location", "plumbing"]

#: Old module path (under ``throttle_lab.``) -> where it lives now.
MOVED: dict[str, str] = {
    "runtime": "core.runtime",
    "events": "core.events",
    "trace": "core.trace",
    "throttler": "core.throttler",
    "limiters": "core.limiters",
    "retry_after": "client.retry_after",
    "backoff": "client.backoff",
    "retry": "client.retry",
    "adaptive": "client.adaptive",
    "transport": "client.transport",
    "tokens": "client.tokens",
    "experiments": "lab.experiments",
    "plots": "lab.plots",
    "widgets": "lab.widgets",
    "grading": "lab.grading",
    "exercises": "lab.exercises",
    "naive": "lab.naive",
    "cli": "lab.cli",
    "shared.lesson": "lab.many_workers",
    "shared.worker": "lab.worker",
}
_PREFIX = "throttle_lab."

#: Names 0.1 exported from ``throttle_lab`` itself that are plumbing, not the surface a user works with:
#: they now live only in their module (name -> module), and ``throttle_lab.<name>`` still finds them.
PLUMBING: dict[str, str] = {
    "emit": "core.events",
    "current_request": "core.events",
    "is_recording": "core.events",
    "Span": "core.trace",
    "percentile": "core.trace",
    "LimiterStatistics": "core.accounting",
    "ConcurrencyStatistics": "core.limiters.concurrency",
    "FixedWindowStatistics": "core.limiters.fixed_window",
    "GCRAStatistics": "core.limiters.gcra",
    "SlidingWindowCounterStatistics": "core.limiters.sliding_counter",
    "SlidingWindowLogStatistics": "core.limiters.sliding_log",
    "TokenBucketStatistics": "core.limiters.token_bucket",
    "ThrottlerStatistics": "core.throttler",
    "AIMDStatistics": "client.adaptive",
    "ClientSideThrottleStatistics": "client.adaptive",
    "RETRYABLE_STATUSES": "client.retry",
    "RetryHint": "client.retry_after",
    "retry_hint": "client.retry_after",
    "parse_duration": "client.retry_after",
    "estimate_prompt_tokens": "client.tokens",
    "estimate_text_tokens": "client.tokens",
    "server_charge": "client.transport",
}


def new_location(name: str) -> str | None:
    """The module an old dotted path now names (``None`` if ``name`` did not move)."""
    if not name.startswith(_PREFIX):
        return None
    rest = name[len(_PREFIX) :]
    for old, new in MOVED.items():
        if rest == old or rest.startswith(old + "."):
            return _PREFIX + new + rest[len(old) :]
    return None


def plumbing(name: str) -> object:
    """``throttle_lab.<name>`` for a name that moved into its module (see :data:`PLUMBING`), with a
    ``DeprecationWarning`` saying where it lives now; ``AttributeError`` for any other name."""
    module = PLUMBING.get(name)
    if module is None:
        raise AttributeError(f"module 'throttle_lab' has no attribute {name!r}")
    where = f"throttle_lab.{module}.{name}"
    warnings.warn(
        f"throttle_lab.{name} moved to {where} in throttle_lab 0.2; import it from there",
        DeprecationWarning,
        stacklevel=3,
    )
    return getattr(importlib.import_module(_PREFIX + module), name)


class _Alias(importlib.abc.Loader):
    """Loads an old path by importing the new one and handing back that same module."""

    def __init__(self, new: str) -> None:
        self.new = new
        self._spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} moved to {self.new} in throttle_lab 0.2; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the shared module: give it back its own.
        module.__spec__ = self._spec

    def get_code(self, fullname: str) -> CodeType | None:
        # `python -m throttle_lab.plots` (the 0.1 spelling) runs the module's code under the new name.
        spec = importlib.util.find_spec(self.new)
        loader = spec.loader if spec is not None else None
        get_code = getattr(loader, "get_code", None)
        return get_code(self.new) if get_code is not None else None


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = new_location(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


_FINDER = _MovedFinder()


def install() -> None:
    """Put the alias finder first (idempotent): an old child path such as ``throttle_lab.limiters.gcra`` must
    be caught before the ordinary finder looks for it in the new folder and loads a second copy."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
