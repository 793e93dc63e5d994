"""Slider labs: change a limit, watch the run again.

In a notebook (JupyterLab 4, Notebook 7, VS Code, Colab) with ``%matplotlib inline``::

    from throttle_lab.lab.widgets import lab, race_lab
    lab()                                   # one design: timeline, rates, in flight, summary
    lab(design="article", server_rpm=30)    # start from other values
    race_lab()                              # several designs on the same traffic

Every slider re-runs the experiment when you let go of it (``continuous_update=False``): the whole run is
simulated on virtual time, so a few hundred requests take a fraction of a second.  The panel is an
ordinary ``ipywidgets.VBox``; the pictures are drawn by :mod:`throttle_lab.lab.plots` and shown through
:func:`slider_output` as plain PNGs, so they look the same under ``%matplotlib inline`` (or any other
backend) and stay in the saved notebook.  The lessons' own labs use :func:`slider_output` too, in place of
``ipywidgets.interactive_output``: see there for why.

The work behind a panel is a plain function you can call yourself (and tests do)::

    trace, fig = run_lab(design="throttler", requests=50, server_rpm=30)
    panel = lab()
    trace, fig = panel.update(requests=50)      # what moving the slider does; closes the old figure

Slider values of ``0`` mean "not set": no limit on the server, the server's value for the client's limits,
the design's own default for the concurrency cap.
"""

from __future__ import annotations

import copy
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
import matplotlib.pyplot as plt

from ..core.runtime import VirtualTimeError, VirtualTimeLivelock
from ..core.trace import Trace
from . import plots
from .experiments import DESIGNS, Comparison, Design, Workload, simulate
from .experiments._drive import server_config
from .plots.race import SUMMARY_COLUMNS, summary_cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "LAB_DEFAULTS",
    "RACE_DEFAULTS",
    "REQUESTS_MAX",
    "Lab",
    "RaceLab",
    "fit_labels",
    "lab",
    "label_width",
    "race_lab",
    "race_table",
    "render_png",
    "run_lab",
    "run_race",
    "show_figure",
    "slider_output",
]

#: The values a lab starts from (and what ``run_lab`` uses for anything not given).
LAB_DEFAULTS: Mapping[str, Any] = {
    "design": "throttler",
    "client_rpm": 0,
    "client_tpm": 0,
    "client_window": 0.0,
    "max_concurrent": 0,
    "requests": 200,
    "arrival": "burst",
    "per_minute": 120,
    "seed": 0,
    "server_rpm": 60,
    "server_tpm": 0,
    "server_window": 60.0,
    "ttft": 0.2,
}

#: The values a race lab starts from.
RACE_DEFAULTS: Mapping[str, Any] = {
    "designs": ("article", "throttler"),
    "max_concurrent": 0,
    "requests": 100,
    "arrival": "burst",
    "per_minute": 120,
    "seed": 0,
    "server_rpm": 60,
    "server_tpm": 0,
    "server_window": 10.0,
    "ttft": 0.2,
}

#: The requests slider's top.  A re-run costs ~1 ms of CPU per request and design here (a few hundred
#: exchanges through the in-process server each), so 1,000 requests took 1-2 s a move with one design
#: and 10 s racing six (``benchmarks/bench_widgets.py``); 300 keeps a move near a learner's patience.
REQUESTS_MAX = 300

_WINDOWS = [("1 s", 1.0), ("10 s", 10.0), ("60 s", 60.0)]
_ARRIVALS = ["burst", "steady", "poisson", "bursts"]


def _unset(value: float) -> float | None:
    """Sliders cannot say "nothing": 0 stands for "not set"."""
    return value if value else None


def _workload(values: Mapping[str, Any]) -> Workload:
    return Workload(
        requests=int(values["requests"]),
        arrival=values["arrival"],
        per_minute=float(values["per_minute"]),
        seed=int(values["seed"]),
    )


def _server(values: Mapping[str, Any]) -> dict[str, Any]:
    rpm, tpm = _unset(values["server_rpm"]), _unset(values["server_tpm"])
    return {
        "rpm": int(rpm) if rpm is not None else None,
        "tpm": int(tpm) if tpm is not None else None,
        "window": float(values["server_window"]),
        "ttft": float(values["ttft"]),
    }


def _merge(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise TypeError(f"unknown lab setting(s) {unknown}; the settings are {sorted(defaults)}")
    return {**defaults, **values}


# ---------------------------------------------------------------------------------------------- the work
def run_lab(**values: Any) -> tuple[Trace, Figure]:
    """Simulate one design with the lab's settings and draw its dashboard: ``(trace, figure)``.

    Takes the keys of :data:`LAB_DEFAULTS` (anything left out keeps its default).  The caller owns the
    figure: close it (``plt.close(fig)``) when done -- :meth:`Lab.update` does that for you.
    """
    settings = _merge(LAB_DEFAULTS, values)
    server = _server(settings)
    rpm, tpm = _unset(settings["client_rpm"]), _unset(settings["client_tpm"])
    window = _unset(settings["client_window"])
    max_concurrent = int(settings["max_concurrent"]) or None
    trace = _simulated(
        settings["design"],
        _workload(settings),
        server,
        {"rpm": rpm, "tpm": tpm, "window": window, "max_concurrent": max_concurrent},
    )
    # What the client was configured to, so the in-flight plot can draw its cap.
    trace.meta.setdefault(
        "client",
        {
            "rpm": rpm if rpm is not None else server["rpm"],
            "tpm": tpm if tpm is not None else server["tpm"],
            "window": window if window is not None else server["window"],
            "max_concurrent": max_concurrent,
        },
    )
    figure = plots.dashboard(trace, layout="fixed", figsize=(10.0, 7.0))
    return trace, figure


def run_race(**values: Any) -> tuple[Comparison, Figure]:
    """Race the chosen designs on the same traffic and draw them side by side: ``(comparison, figure)``.

    Takes the keys of :data:`RACE_DEFAULTS`; ``designs`` is a sequence of names from ``DESIGNS``.  The
    figure has no summary table: the race lab prints the same table (:func:`race_table`) above it, as
    text, which costs nothing to draw.
    """
    settings = _merge(RACE_DEFAULTS, values)
    designs = list(settings["designs"])
    if not designs:
        raise ValueError("choose at least one design to race")
    workload, server = _workload(settings), _server(settings)
    limits = {"max_concurrent": int(settings["max_concurrent"]) or None}
    # compare() with each design's run looked up first: ticking one more design runs that one only.
    traces = {
        design.name if isinstance(design, Design) else design: _simulated(design, workload, server, limits)
        for design in designs
    }
    config = server_config(server)
    comparison = Comparison(traces, workload, config, limit_per_minute=config.rpm)
    return comparison, plots.race(comparison, layout="fixed", table=False)


def race_table(comparison: Comparison) -> str:
    """The race's summary as plain text, one row per design: the columns of the race figure's table."""
    rows = [list(SUMMARY_COLUMNS), *summary_cells(comparison.summaries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]

    def line(row: list[str]) -> str:  # the names to the left, the numbers to the right
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    lines = [line(row) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


#: Runs kept for settings seen lately (a run is a few thousand events; this is a few megabytes at most).
_RUNS_KEPT = 24
_runs: OrderedDict[tuple[Any, ...], Trace] = OrderedDict()


def _simulated(
    design: str | Design, workload: Workload, server: Mapping[str, Any], limits: Mapping[str, Any]
) -> Trace:
    """``simulate(design, workload, server, **limits)``, answered from memory for settings seen lately.

    A run is a function of its settings (the same arguments give the same trace, event for event), so a
    slider moved back, or a race that gains a design, need not run again what it ran a moment ago.  Each
    caller gets its own copy (events and meta), so what one does to its trace never reaches the next.
    Only named designs are kept: a ``Design`` object's name does not say what its ``build`` does.
    """
    if not isinstance(design, str):
        return _simulate(design.name, design, workload, server)  # a Design carries its own limits
    key = (design, repr(workload), tuple(sorted(server.items())), tuple(sorted(limits.items())))
    trace = _runs.get(key)
    if trace is None:
        trace = _simulate(design, design, workload, server, **limits)
        _runs[key] = trace
        while len(_runs) > _RUNS_KEPT:
            _runs.popitem(last=False)
    else:
        _runs.move_to_end(key)
    return Trace(trace, copy.deepcopy(trace.meta))


def _simulate(name: str, *args: Any, **kwargs: Any) -> Trace:
    """``simulate(*args, **kwargs)``; a run that got stuck says which design it was (a race runs several)."""
    try:
        return simulate(*args, **kwargs)
    except VirtualTimeLivelock as exc:
        raise VirtualTimeLivelock(f"{name}: {exc}") from exc


#: What a lab adds under a livelock's first line (the task list after it is for debugging, not for a lab).
_LIVELOCK_HINT = (
    "A design that re-checks without sleeping keeps virtual time from moving -- the article's sliding "
    "window does after the float trap of lesson 04 (on a real loop it would busy-wait until the clock "
    "crept on). Try another arrival pattern, or another design."
)


def render_png(figure: Figure) -> bytes:
    """The figure as PNG bytes, at its own size and dpi: what a lab puts in the notebook.

    One drawing pass and light compression: this is most of what a slider move costs.  No
    ``bbox_inches="tight"`` (which would draw twice; the dashboard's fixed layout already fits the figure).
    A figure with a layout engine (``layout="constrained"``) has its layout computed once, directly, and
    is then drawn once with the layout kept, instead of matplotlib's full extra drawing pass.
    """
    engine = figure.get_layout_engine()
    if engine is not None:
        engine.execute(figure)
        figure.set_layout_engine(None)  # "none" would leave a placeholder, and savefig would lay out again
    buffer = io.BytesIO()
    # Light compression: a slightly larger PNG, encoded several times faster.
    figure.savefig(buffer, format="png", dpi=figure.dpi, pil_kwargs={"compress_level": 1})
    return buffer.getvalue()


def show_figure(figure: Figure) -> None:
    """Show ``figure`` in the notebook as a PNG rendered by :func:`render_png`, then close it.

    For the lessons' own slider labs, instead of ``display(figure); plt.close(figure)``: the same picture
    in about half the time (``display`` under ``%matplotlib inline`` draws a figure twice to find its
    tight bounding box, and compresses harder).  Outside IPython it only closes the figure.
    """
    _show(figure)
    plt.close(figure)


def slider_output(function: Callable[..., object], controls: Mapping[str, Any]) -> ipywidgets.Output:
    """An output area that calls ``function(**values)`` now and whenever a control's value changes.

    Use it like ``ipywidgets.interactive_output(function, controls)``.  It differs in one way that
    matters in JupyterLab 4 and Notebook 7 with ipykernel 7: there, widget messages can be handled on a
    kernel *subshell*, in another thread, while a slider's callback is still drawing.  Every message
    handled ends with the inline backend's "post execute" flush, which draws and shows every figure
    pyplot knows of, from that other thread: the figure being built is drawn by two threads at once,
    and the learner gets a blank or half-drawn plot (the browser test in ``tests/browser`` caught it).
    So the callback runs with pyplot's interactive mode off, which keeps the flush from seeing its
    figures, and one callback at a time; in a notebook, figures it leaves open are shown from here and
    closed, so no later flush shows them again.

        output = slider_output(show_run, {"rate": rate_slider, "burst": burst_slider})
        display(widgets.HBox([rate_slider, burst_slider]), output)
    """
    output = ipywidgets.Output()
    one_at_a_time = threading.Lock()

    def redraw(_change: object = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        with one_at_a_time, output:
            output.clear_output(wait=True)
            before = set(plt.get_fignums())
            with plt.ioff():
                function(**values)
                if _in_ipython():  # in a script or a test the caller keeps what it drew
                    for number in sorted(set(plt.get_fignums()) - before):
                        show_figure(plt.figure(number))

    for control in controls.values():
        control.observe(redraw, "value")
    redraw()
    return output


def _in_ipython() -> bool:
    from IPython import get_ipython

    return get_ipython() is not None


def _show(figure: Figure) -> None:
    """Put the figure in the current output (the lab's Output widget) as a PNG, then close it.

    A PNG rather than the live figure: it looks the same under every backend and front end, stays in the
    saved notebook, and closing the figure at once keeps pyplot from showing it again after the cell.
    """
    from IPython.display import Image, display

    if not _in_ipython():
        return  # a script or a test: the caller has the figure
    display(Image(data=render_png(figure), format="png"))  # type: ignore[no-untyped-call]
    plt.close(figure)


# ---------------------------------------------------------------------------------------------- controls
#: Slider track width (px); a label gets what it needs on top (see :func:`fit_labels`).
_TRACK = 160


def _style() -> dict[str, Any]:
    return {"style": {"description_width": "initial"}}


def label_width(descriptions: Sequence[str]) -> int:
    """Pixels a column of labels needs so that none is cut off ("seconds e…"): the longest, at ~7 px a
    character of the front ends' 13 px sans-serif, plus padding."""
    return max((7 * len(text) + 16 for text in descriptions), default=0)


def fit_labels(controls: Sequence[Any]) -> list[Any]:
    """Give every control of a column one label width that fits the longest label, and the same track."""
    width = label_width([w.description for w in controls if getattr(w, "description", "")])
    for widget in controls:
        if isinstance(widget, ipywidgets.Checkbox):
            widget.style.description_width = "initial"
            continue
        widget.style.description_width = f"{width}px"
        widget.layout.width = f"{width + _TRACK + 60}px"  # + room for the slider's readout
    return list(controls)


def _int(description: str, value: int, low: int, high: int, step: int = 1) -> ipywidgets.IntSlider:
    return ipywidgets.IntSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        **_style(),
    )


def _float(description: str, value: float, low: float, high: float, step: float) -> ipywidgets.FloatSlider:
    return ipywidgets.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step,
        description=description,
        continuous_update=False,
        **_style(),
    )


def _choice(description: str, options: Sequence[Any], value: Any) -> ipywidgets.Dropdown:
    return ipywidgets.Dropdown(options=list(options), value=value, description=description, **_style())


def _workload_controls(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "requests": _int("requests", values["requests"], 1, REQUESTS_MAX),
        "arrival": _choice("arrival pattern", _ARRIVALS, values["arrival"]),
        "per_minute": _int("arrivals / min", values["per_minute"], 10, 1200, 10),
        "seed": _int("seed", values["seed"], 0, 50),
    }


def _server_controls(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "server_rpm": _int("rpm (0 = none)", values["server_rpm"], 0, 600, 10),
        "server_tpm": _int("tpm (0 = none)", values["server_tpm"], 0, 200_000, 5_000),
        "server_window": _choice("enforced over", _WINDOWS, float(values["server_window"])),
        "ttft": _float("latency: first token (s)", values["ttft"], 0.0, 5.0, 0.1),
    }


def _column(title: str, controls: Sequence[Any]) -> ipywidgets.VBox:
    return ipywidgets.VBox([ipywidgets.HTML(f"<b>{title}</b>"), *fit_labels(controls)])


class _Panel(ipywidgets.VBox):  # type: ignore[misc]  # ipywidgets has no type information
    """A VBox of controls over an output area; ``update(**values)`` is what a slider move runs."""

    defaults: Mapping[str, Any] = {}

    def __init__(self, controls: Mapping[str, Any], columns: Sequence[Any], intro: str) -> None:
        self.controls: dict[str, Any] = dict(controls)
        self.figure: Figure | None = None
        self.error: str | None = None
        output = slider_output(self._render, self.controls)
        super().__init__(
            [
                ipywidgets.HTML(intro),
                ipywidgets.HBox(list(columns), layout=ipywidgets.Layout(flex_flow="row wrap")),
                output,
            ]
        )
        self.output = output

    @property
    def values(self) -> dict[str, Any]:
        """The controls' current values."""
        return {name: widget.value for name, widget in self.controls.items()}

    def _run(self, settings: dict[str, Any]) -> tuple[Any, Figure]:
        raise NotImplementedError

    def _report(self, result: Any) -> None:
        raise NotImplementedError

    def _update(self, **values: Any) -> tuple[Any, Figure]:
        settings = _merge(self.defaults, {**self.values, **values})
        result, figure = self._run(settings)
        # One figure at a time: the previous one is closed, so re-running never leaks figures.
        if self.figure is not None:
            plt.close(self.figure)
        self.figure = figure
        return result, figure

    def _render(self, **values: Any) -> None:
        try:
            result, figure = self._update(**values)
        except (ValueError, VirtualTimeError) as exc:
            # A setting the library refuses (e.g. a bucket smaller than one request) is a lesson too.
            self.error = f"{type(exc).__name__}: {exc}"
            print(self.error.splitlines()[0])  # a stuck run lists every pending task after its first line
            if isinstance(exc, VirtualTimeLivelock):
                print(_LIVELOCK_HINT)
            return
        self.error = None
        self._report(result)
        _show(figure)


class Lab(_Panel):
    """The slider lab for one design (see :func:`lab`).  ``update(**values)`` re-runs and redraws."""

    defaults = LAB_DEFAULTS

    def __init__(self, **values: Any) -> None:
        settings = _merge(LAB_DEFAULTS, values)
        self.trace: Trace | None = None
        design = _choice("design", list(DESIGNS), settings["design"])
        client = {
            "design": design,
            "client_rpm": _int("rpm (0 = server's)", settings["client_rpm"], 0, 600, 10),
            "client_tpm": _int("tpm (0 = server's)", settings["client_tpm"], 0, 200_000, 5_000),
            "client_window": _choice(
                "burst window", [("server's", 0.0), *_WINDOWS], float(settings["client_window"])
            ),
            "max_concurrent": _int("max in flight (0 = default)", settings["max_concurrent"], 0, 50),
        }
        workload = _workload_controls(settings)
        server = _server_controls(settings)
        columns = [
            _column("Client", list(client.values())),
            _column("Workload", list(workload.values())),
            _column("Server", list(server.values())),
        ]
        intro = "<b>throttle_lab</b>: choose a design and its limits; each change re-runs on virtual time."
        super().__init__({**client, **workload, **server}, columns, intro)

    def update(self, **values: Any) -> tuple[Trace, Figure]:
        """Re-run with the controls' values overridden by ``values``; returns ``(trace, figure)``.

        The controls themselves are not moved.  The previous figure is closed.
        """
        trace, figure = self._update(**values)
        return trace, figure

    def _run(self, settings: dict[str, Any]) -> tuple[Any, Figure]:
        trace, figure = run_lab(**settings)
        self.trace = trace
        return trace, figure

    def _report(self, result: Any) -> None:
        trace: Trace = result
        design = trace.meta.get("design", "")
        print(f"{design}: {trace.meta.get('description') or DESIGNS.get(design, '')}")
        server = trace.meta.get("server") or {}
        print(trace.summary(server.get("rpm")))


class RaceLab(_Panel):
    """The slider lab racing several designs (see :func:`race_lab`)."""

    defaults = RACE_DEFAULTS

    def __init__(self, **values: Any) -> None:
        settings = _merge(RACE_DEFAULTS, values)
        self.comparison: Comparison | None = None
        designs = ipywidgets.SelectMultiple(
            options=list(DESIGNS),
            value=tuple(settings["designs"]),
            rows=len(DESIGNS),
            description="designs",
            **_style(),
        )
        client = {
            "designs": designs,
            "max_concurrent": _int("max in flight (0 = default)", settings["max_concurrent"], 0, 50),
        }
        workload = _workload_controls(settings)
        server = _server_controls(settings)
        columns = [
            _column("Designs (ctrl-click for several)", list(client.values())),
            _column("Workload", list(workload.values())),
            _column("Server", list(server.values())),
        ]
        intro = "<b>throttle_lab race</b>: the same traffic through several designs, side by side."
        super().__init__({**client, **workload, **server}, columns, intro)

    def update(self, **values: Any) -> tuple[Comparison, Figure]:
        """Re-run the race with the controls' values overridden by ``values``: ``(comparison, figure)``."""
        comparison, figure = self._update(**values)
        return comparison, figure

    def _run(self, settings: dict[str, Any]) -> tuple[Any, Figure]:
        comparison, figure = run_race(**settings)
        self.comparison = comparison
        return comparison, figure

    def _report(self, result: Any) -> None:
        print(race_table(result))


def lab(**values: Any) -> Lab:
    """A panel of sliders over one design: timeline, rates, in-flight count and summary, re-run on change.

    Keyword arguments set the starting values (the keys of :data:`LAB_DEFAULTS`).  Display it as the last
    line of a cell.  ``lab(...).update(requests=50)`` runs what moving the slider would, without a browser.
    """
    return Lab(**values)


def race_lab(**values: Any) -> RaceLab:
    """A panel racing several designs on the same traffic (keys of :data:`RACE_DEFAULTS`)."""
    return RaceLab(**values)
