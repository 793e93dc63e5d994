"""Plots: look at a run.  Every function takes a :class:`~throttle_lab.Trace` and draws one picture of it.

A rate limit is a rule about *time*, so the pictures are all against time::

    from throttle_lab.lab.experiments import simulate, Workload
    from throttle_lab.lab import plots

    trace = simulate("article", Workload(requests=60), {"rpm": 30, "window": 10})
    plots.timeline(trace)      # one row per request: waiting, in flight, 429s, retries
    plots.rates(trace)         # requests (and tokens) per minute against the server's limit
    plots.in_flight(trace)     # how many at once, against the concurrency cap
    plots.level(trace)         # the limiter's bucket / window, read at every grant
    plots.waits(trace)         # how long requests waited before they were sent
    plots.dashboard(trace)     # timeline + rates + in flight, one figure
    plots.race(compare(["article", "throttler"], ...))   # designs side by side on the same traffic

Each single-panel function takes an optional matplotlib ``ax`` and returns the Axes it drew on (a new
figure is made when ``ax`` is None); :func:`dashboard` and :func:`race` return a Figure.  Nothing here calls
``show()``: in a notebook with ``%matplotlib inline`` the figure appears at the end of the cell.

Titles say what was run (design, server limits, workload) when the trace's ``meta`` knows it, and colours
come from the Okabe–Ito palette, which stays distinguishable for colour-blind readers.  Every picture is
meant to be read at a glance: limit lines are drawn above the data and labelled where they are (a curve
running exactly at its limit never hides it), a request granted at once is a dot rather than an empty row,
429s that would pile up are merged into one cross labelled with how many it stands for, and legends sit
outside the plot, past any right-hand axis.  Extra curves go on a rates panel with ``curves=`` (an adaptive
controller's rate, ``{"AIMD rate": [(t, rate * 60) for t, rate in aimd.history]}``), inside its y-limits.

Everything is drawn with a handful of vectorised artists (line collections, step lines, one scatter per
marker kind), so a few thousand requests draw in well under a second.

Inside the package, each picture has its own module (``timeline``, ``rates``, ``in_flight``, ``level``,
``waits``, ``dashboard``, ``race``); they all stand on :mod:`~throttle_lab.lab.plots.model` (a trace read as
one row per request, and what its ``meta`` says) and share :mod:`~throttle_lab.lab.plots.drawing` (colours,
titles, legends), :mod:`~throttle_lab.lab.plots.ticks` (ticks made only where they are seen) and
:mod:`~throttle_lab.lab.plots.margins` (:func:`fit_margins`).  Import the functions from here: a module and
its function share a name, so ``plots.timeline`` is the function.

:func:`fit_margins` sets the margins of a column of panels from the texts in them, measured once: the
lessons' slider labs call it instead of ``layout="constrained"``, which lays every axes out on each draw.

``python -m throttle_lab.lab.plots [DIRECTORY]`` writes one example PNG per plot (default: ``docs/``), as
:func:`save_examples` does.
"""

from __future__ import annotations

from .dashboard import dashboard
from .drawing import OKABE_ITO
from .examples import save_examples
from .in_flight import in_flight
from .level import level
from .margins import fit_margins
from .race import race
from .rates import rates
from .timeline import timeline
from .waits import waits

__all__ = [
    "OKABE_ITO",
    "dashboard",
    "fit_margins",
    "in_flight",
    "level",
    "race",
    "rates",
    "save_examples",
    "timeline",
    "waits",
]
