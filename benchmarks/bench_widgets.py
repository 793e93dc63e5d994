"""Slider-lab benchmark: how long a learner waits after letting go of a slider, for every slider lab.

Run from the repository root::

    python benchmarks/bench_widgets.py             # 5 moves per lab (about a minute)
    python benchmarks/bench_widgets.py --quick     # 2 moves per lab
    python benchmarks/bench_widgets.py --repeat 9  # steadier medians
    python benchmarks/bench_widgets.py --notebooks /tmp/nb   # the same labs from other copies of the lessons

Every slider lab of the lessons is measured at its **largest settings** (the heaviest values its sliders
allow; each case says which), on matplotlib's Agg backend:

* the library's panels, ``lab()`` and ``race_lab()`` (:mod:`throttle_lab.lab.widgets`): one move is what the
  panel's ``slider_output`` callback runs -- re-run, print the summary, render the PNG
  (``widgets._show``) -- with a new seed on every move, so a cache for identical settings never answers;
* the labs the lessons define in their own cells (``seats_lab``, ``blast_lab``, ...): the cells that
  define the lab's callback (the function given to ``slider_output``) and everything it needs are
  read from the notebook's JSON and run in a fresh namespace, so this measures exactly what the learner
  runs.  One move calls the callback with the largest slider values; its ``display(figure)`` (or
  ``plt.show()``) renders the PNG as ``%matplotlib inline`` does: ``bbox_inches="tight"``, the figure's
  own dpi (the inline backend sets no rc of its own since matplotlib-inline 0.1.4).  These labs keep no
  cache, so every move is a fresh run.

The columns split a move: *run* (simulate, and print the lab's report), *draw* (make the figure and its
artists: ``plt.subplots`` and the ``plots`` calls), *PNG* (render and encode). Each is the median over the
moves, as is the whole move; *best* is the quickest whole move, and *CPU* the median CPU time of this
process for a move. CPU well below the move means the process waited for a core that other work held; CPU
equal to it means the move really cost that much CPU -- which, on a virtual machine shared with other work,
still grows with the neighbours' load (check the load average printed above the table, and compare before
and after in alternating runs). The machine's speed is measured too, before and after the labs (the httpx
floor's milliseconds per exchange, :func:`floor_ms_per_exchange`), and each move is also given scaled to
the speed of the recorded run in ``benchmarks/README.md``. The target is 300 ms for the whole move.
Progress goes to stderr, a markdown table to stdout. Nothing is asserted: this is a report.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import importlib.metadata
import io
import json
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib import _pylab_helpers
from matplotlib.figure import Figure

from throttle_lab.lab import plots as lab_plots
from throttle_lab.lab import widgets as lab_widgets
from throttle_lab.lab.experiments import DESIGNS, Workload

TARGET_MS = 300.0
ROOT = Path(__file__).resolve().parent.parent

#: The machine's speed in the recorded run (benchmarks/README, *Recorded run: simulated hour*): the httpx
#: floor -- a plain ``httpx.ASGITransport`` round trip to a trivial app on virtual time -- took 1.74 CPU
#: seconds for 10,000 exchanges there.  The same shared machine has since measured up to 2.7 times slower
#: on other days, for the same code, so a whole move in milliseconds only means something next to the
#: speed it was measured at: the report gives both, and each move scaled to this speed.
REFERENCE_FLOOR_MS = 0.174


# ------------------------------------------------------------------------------------------- the clock
@dataclass
class Clock:
    """Seconds spent in each part of one move."""

    parts: dict[str, float] = field(default_factory=lambda: {"draw": 0.0, "png": 0.0})

    def timed(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.parts[part] += time.perf_counter() - start

        return wrapper

    def reset(self) -> None:
        for part in self.parts:
            self.parts[part] = 0.0


def inline_png(figure: Figure) -> bytes:
    """What ``display(figure)`` sends under ``%matplotlib inline``: IPython's ``print_figure`` defaults."""
    buffer = io.BytesIO()
    figure.canvas.print_figure(
        buffer,
        format="png",
        facecolor=figure.get_facecolor(),
        edgecolor=figure.get_edgecolor(),
        dpi=figure.dpi,
        bbox_inches="tight",
    )
    return buffer.getvalue()


class _TimedModule(types.ModuleType):
    """A module whose functions are timed as one part of the move (``plots``, ``plt``)."""

    def __init__(self, module: types.ModuleType, clock: Clock, part: str, extra: Mapping[str, Any]) -> None:
        super().__init__(module.__name__)
        self._module, self._clock, self._part, self._extra = module, clock, part, dict(extra)

    def __getattr__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        value = getattr(self._module, name)
        if callable(value) and not isinstance(value, type):
            return self._clock.timed(self._part, value)
        return value


# ------------------------------------------------------------------------------- labs from a notebook
def _code_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    sources = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython magics and shell escapes are not Python; the benchmark sets the backend itself.
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        sources.append("\n".join(lines))
    return sources


def _bound(statement: ast.stmt) -> set[str]:
    """Top-level names a statement defines or changes (``X = ``, ``X[k] = ``, ``def X``, ``import X``)."""
    names: set[str] = set()
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        names.add(statement.name)
    elif isinstance(statement, ast.Import | ast.ImportFrom):
        for alias in statement.names:
            names.add((alias.asname or alias.name).split(".")[0])
    elif isinstance(statement, ast.Assign | ast.AnnAssign | ast.AugAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        for target in targets:
            for node in ast.walk(target):
                base = node
                while isinstance(base, ast.Subscript | ast.Attribute):
                    base = base.value
                if isinstance(base, ast.Name):
                    names.add(base.id)
    return names


def _free(statement: ast.stmt) -> set[str]:
    """Names a statement reads that it does not define itself (an over-approximation is fine)."""
    loads: set[str] = set()
    local: set[str] = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else local).add(node.id)
        elif isinstance(node, ast.arg):
            local.add(node.arg)
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node is not statement
        ):
            local.add(node.name)
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return (loads - local) | {
            n.id for d in statement.decorator_list for n in ast.walk(d) if isinstance(n, ast.Name)
        }
    return loads - (local - loads)


#: What a lesson's lab hands its callback to: ours (``widgets.slider_output``) or ipywidgets' own.
_LAB_OUTPUTS = {"slider_output", "interactive_output"}


def _callee(call: ast.Call) -> str | None:
    """The called function's name: ``f`` in ``f(...)`` and in ``module.f(...)``."""
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def load_lab(path: Path, clock: Clock) -> tuple[Callable[..., Any], dict[str, Any], dict[str, Any]]:
    """The lab's callback, its controls (the widgets) and the namespace they run in, from the notebook.

    Finds the ``slider_output(callback, controls)`` call (or ipywidgets' ``interactive_output``), then
    runs -- in order, in a fresh namespace -- just the top-level statements of the cells up to that one
    which define what the callback and the controls need (imports, functions, constants), transitively.
    ``display``, ``plots`` and ``plt`` are wrapped so that a move's parts can be timed.
    """
    statements: list[ast.stmt] = []
    call: ast.Call | None = None
    for source in _code_cells(path):
        tree = ast.parse(source)
        statements.extend(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee(node) in _LAB_OUTPUTS:
                call = node
        if call is not None:
            break
    if call is None or not all(isinstance(a, ast.Name) for a in call.args[:2]):
        raise LookupError(f"{path.name}: no slider_output(callback, controls) call")
    callback, controls = (a.id for a in call.args[:2] if isinstance(a, ast.Name))
    needed, chosen = {callback, controls}, set()
    changed = True
    while changed:
        changed = False
        for index, statement in enumerate(statements):
            if index not in chosen and _bound(statement) & needed:
                chosen.add(index)
                needed |= _free(statement) - set(dir(builtins))
                changed = True
    module = ast.Module(body=[statements[i] for i in sorted(chosen)], type_ignores=[])
    namespace: dict[str, Any] = {"__name__": f"lab_{path.stem}"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(module, str(path), "exec"), namespace)
    _instrument(namespace, clock)
    return namespace[callback], namespace[controls], namespace


def _instrument(namespace: dict[str, Any], clock: Clock) -> None:
    png = clock.timed("png", inline_png)

    def show(*_: Any, **__: Any) -> None:  # plt.show() under the inline backend: show every figure, close
        for manager in _pylab_helpers.Gcf.get_all_fig_managers():
            png(manager.canvas.figure)
        plt.close("all")

    def display(*objects: Any, **_: Any) -> None:
        for item in objects:
            if isinstance(item, Figure):
                png(item)

    namespace["display"] = display
    if "show_figure" in namespace:  # widgets.show_figure: render_png, then close (as in a notebook)

        def show_figure(figure: Figure) -> None:
            clock.timed("png", lab_widgets.render_png)(figure)
            plt.close(figure)

        namespace["show_figure"] = show_figure
    if "plt" in namespace:
        namespace["plt"] = _TimedModule(plt, clock, "draw", {"show": show, "close": plt.close})
    if "plots" in namespace:
        namespace["plots"] = _TimedModule(namespace["plots"], clock, "draw", {})


def resolve(controls: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The callback's arguments: ``"max"``/``"min"`` read from the slider, anything else as given."""
    values = {name: widget.value for name, widget in controls.items()}
    for name, value in wanted.items():
        widget = controls[name]
        if value in ("max", "min"):
            if hasattr(widget, "max"):
                value = getattr(widget, value)
            else:  # a SelectionSlider or a Dropdown: its last / first option
                options = [o[1] if isinstance(o, tuple) else o for o in widget.options]
                value = options[-1] if value == "max" else options[0]
        values[name] = value
    return values


# --------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    lab: str
    where: str
    settings: str
    prepare: Callable[[Clock], Callable[[int], None]]  # one move with a fresh variation number


def notebook_case(notebook: str, lab: str, wanted: Mapping[str, Any], note: str = "") -> Callable[..., Case]:
    def make(directory: Path) -> Case:
        path = directory / notebook

        def prepare(clock: Clock) -> Callable[[int], None]:
            callback, controls, _ = load_lab(path, clock)
            values = resolve(controls, wanted)

            def move(_: int) -> None:
                callback(**values)

            return move

        settings = ", ".join(f"{k}={v}" for k, v in wanted.items()) + (f" ({note})" if note else "")
        return Case(lab, notebook.split("_")[0], settings, prepare)

    return make


def panel_case(kind: str, where: str, values: Mapping[str, Any], note: str = "") -> Callable[..., Case]:
    def make(_: Path) -> Case:
        def prepare(clock: Clock) -> Callable[[int], None]:
            # The panel's own path: Lab._render -> _update -> run_lab/run_race -> _report -> _show.
            lab_widgets._show = clock.timed("png", _close_after(lab_widgets.render_png))
            # The panels call ``plots.race``/``plots.dashboard`` through widgets' own name for the package.
            vars(lab_widgets)["plots"] = _TimedModule(lab_plots, clock, "draw", {})
            with contextlib.redirect_stdout(io.StringIO()):
                panel = lab_widgets.lab() if kind == "lab" else lab_widgets.race_lab()
            chosen = resolve(panel.controls, values)

            def move(seed: int) -> None:  # a new seed every move: a fresh run, never a cached one
                panel._render(**{**chosen, "seed": 100 + seed})

            return move

        settings = ", ".join(f"{k}={v}" for k, v in values.items()) + (f" ({note})" if note else "")
        return Case(f"{kind}()", where, settings, prepare)

    return make


def _close_after(render: Callable[[Figure], bytes]) -> Callable[[Figure], None]:
    def show(figure: Figure) -> None:
        render(figure)
        plt.close(figure)

    return show


def cases() -> list[Callable[[Path], Case]]:
    top = "max"
    all_designs = tuple(DESIGNS)
    return [
        notebook_case(
            "00_async_in_jupyter.ipynb",
            "seats_lab",
            {"tasks": "max", "seconds": "max", "max_concurrent": "min"},
        ),
        notebook_case(
            "01_meet_the_429.ipynb",
            "blast_lab",
            {"requests": "max", "rpm": "min", "window": 10.0},
            "most 429s",
        ),
        notebook_case(
            "02_semaphores.ipynb",
            "semaphore_lab",
            {"max_concurrent": "max", "latency": "min", "requests": "max"},
        ),
        notebook_case(
            "03_token_bucket.ipynb", "bucket_run", {"rate": "min", "capacity": "max", "fill": "max"}
        ),
        notebook_case(
            "04_windows.ipynb",
            "window_run",
            {"algorithm": "sliding log", "limit": "max", "window": 1.0, "arrival": "poisson"},
        ),
        notebook_case(
            "06_retry_after_and_backoff.ipynb",
            "herd_lab",
            {"strategy": "ExponentialBackoff", "clients": "max", "count_rejected": True},
        ),
        notebook_case(
            "07_adaptive_throttling.ipynb",
            "aimd_lab",
            {"increase": "max", "decrease": "max", "cooldown": "min"},
        ),
        notebook_case(
            "08_many_keys_and_a_live_run.ipynb",
            "keys_lab",
            {"keys": "max", "per_key_rpm": "min", "requests": "max", "shared": True},
        ),
        notebook_case(
            "10_many_workers_one_key.ipynb",
            "worker_lab",
            {"workers": "max", "requests": "max", "rpm": "min", "burst": "min", "shared": False},
        ),
        panel_case("lab", "playground", {"design": "throttler", "requests": top}),
        panel_case(
            "lab",
            "playground",
            {"design": "unthrottled", "requests": top, "server_window": 10.0},
            "the slowest design",
        ),
        panel_case("race_lab", "05, 09, playground", {"designs": ("article", "throttler"), "requests": top}),
        panel_case(
            "race_lab", "05, 09, playground", {"designs": all_designs, "requests": top}, "every design"
        ),
    ]


# ------------------------------------------------------------------------------------------ measuring
def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


@contextlib.contextmanager
def _restored() -> Iterator[None]:
    show = lab_widgets._show
    try:
        yield
    finally:
        lab_widgets._show = show
        vars(lab_widgets)["plots"] = lab_plots
        plt.close("all")


def measure(case: Case, repeat: int) -> dict[str, float]:
    """Median milliseconds of one slider move, and of its parts, over ``repeat`` moves (after a warm-up)."""
    clock = Clock()
    total, cpu, run, draw, png = [], [], [], [], []
    with _restored(), contextlib.redirect_stdout(io.StringIO()):
        move = case.prepare(clock)
        move(0)  # warm-up: imports, font cache, first figure
        for index in range(1, repeat + 1):
            clock.reset()
            start, start_cpu = time.perf_counter(), time.process_time()
            move(index)
            elapsed = time.perf_counter() - start
            cpu.append(time.process_time() - start_cpu)
            total.append(elapsed)
            draw.append(clock.parts["draw"])
            png.append(clock.parts["png"])
            run.append(elapsed - clock.parts["draw"] - clock.parts["png"])
    return {
        "total": _median_ms(total),
        "best": min(total) * 1000.0,
        "cpu": _median_ms(cpu),
        "run": _median_ms(run),
        "draw": _median_ms(draw),
        "png": _median_ms(png),
    }


def floor_ms_per_exchange(requests: int = 2_000, repeat: int = 3) -> float:
    """This machine's speed now: CPU milliseconds per exchange of the httpx floor (median of ``repeat``).

    The floor is ``bench_experiments.measure_floor``, the yardstick of the simulated hour, on the hour's
    own Poisson arrivals (10,000 an hour) cut to ``requests``.  A move is mostly Python and matplotlib on
    one core, as the floor is, so ``REFERENCE_FLOOR_MS / floor`` estimates how much quicker the same move
    would be on the recorded run's machine (an estimate: a neighbour that takes the caches rather than the
    core slows the two unevenly).
    """
    from bench_experiments import measure_floor  # beside this file; the script's folder is on sys.path

    workload = Workload(requests=requests, arrival="poisson", per_minute=10_000 / 60, seed=1)
    walls = [measure_floor(workload)[0] for _ in range(repeat)]
    return statistics.median(walls) / requests * 1000.0


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on Unix
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None, help="slider moves per lab (default: 5)")
    parser.add_argument("--quick", action="store_true", help="2 moves per lab")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="where the lessons are")
    parser.add_argument("--only", default="", help="only the labs whose name contains this")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    started = time.perf_counter()
    # The machine's speed, before and after the labs: a neighbour that comes or goes shows as a difference.
    floors = [floor_ms_per_exchange()]
    rows: list[tuple[Case, dict[str, float] | str]] = []
    for make in cases():
        case = make(args.notebooks)
        if args.only and args.only not in case.lab:
            continue
        print(f"  {case.lab} ({case.where}) ...", file=sys.stderr, flush=True)
        try:
            rows.append((case, measure(case, repeat)))
        except (LookupError, OSError, KeyError, ValueError) as exc:  # a lesson without this lab (yet)
            rows.append((case, f"not measured: {type(exc).__name__}: {exc}"))
    floors.append(floor_ms_per_exchange())
    wall = time.perf_counter() - started
    scale = REFERENCE_FLOOR_MS / statistics.mean(floors)

    command = "python benchmarks/bench_widgets.py" + " ".join(f" {a}" for a in (argv or sys.argv[1:]))
    print("# throttle_lab slider-lab benchmark")
    print()
    print(f"- command: `{command}`")
    print(f"- one slider move per lab at its largest settings, median of {repeat} (after one warm-up move)")
    machine = f"{platform.platform()}, {os.cpu_count()} CPUs, load average {_load()}"
    print(f"- Python {platform.python_version()} on {machine}")
    print(
        f"- matplotlib {_version('matplotlib')} (Agg), ipywidgets {_version('ipywidgets')}, "
        f"throttle-lab {_version('throttle-lab')}; total wall time {wall:.1f} s"
    )
    print(
        f"- this machine's speed: the httpx floor took {floors[0]:.3f} ms per exchange before the labs and "
        f"{floors[1]:.3f} after; {REFERENCE_FLOOR_MS:.3f} in the recorded run, so the moves are scaled by "
        f"{scale:.2f} to that machine's speed (an estimate)"
    )
    print()
    headers = ["lab", "lesson", "largest settings", "slider move (median)", "best", "CPU"]
    headers += ["run", "draw", "PNG", "move at recorded speed"]
    print("| " + " | ".join([*headers, "target", "meets (measured / at recorded speed)"]) + " |")
    print("|" + "|".join("---" for _ in range(len(headers) + 2)) + "|")
    for case, r in rows:
        cells = [case.lab, case.where, case.settings]
        if isinstance(r, str):
            cells += [r, "", "", "", "", "", ""]
            meets = "-"
        else:
            cells += [f"{r[k]:.0f} ms" for k in ("total", "best", "cpu", "run", "draw", "png")]
            at_speed = r["total"] * scale
            cells.append(f"~{at_speed:.0f} ms")
            meets = " / ".join("yes" if ms <= TARGET_MS else "**no**" for ms in (r["total"], at_speed))
        print("| " + " | ".join([*cells, f"≤ {TARGET_MS:.0f} ms", meets]) + " |")


if __name__ == "__main__":
    main()
