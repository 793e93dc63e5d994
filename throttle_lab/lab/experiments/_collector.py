"""``collector_paused()``: a simulation's run without Python's cyclic garbage collector scanning it.

A simulation keeps almost everything it makes: every event of the trace, every server record, every
finished request's task until the run ends -- a few hundred thousand objects for 10,000 requests, and
nearly none of them garbage.  The cyclic collector does not know that: each time the objects that survived
its young generations grow by a quarter, it walks *every* tracked object in the process, the whole trace so
far included, and after the run it would walk all of them once more as young objects.  That was more than a
tenth of a long run's time, spent finding nothing: a run of 10,000 requests leaves a few dozen objects in
reference cycles.

So the run goes without it, and what the run made joins the collector's oldest generation directly, where
long-lived objects belong (``gc.freeze()`` then ``gc.unfreeze()`` puts every tracked object there; it is
skipped if anything else has frozen objects, so theirs stay frozen).  Memory is still freed as usual:
reference counting frees everything not in a cycle at once, and the few cycles wait for the next full
collection.  The collector is switched back on when the run ends, however it ends.  A caller that had it
off already (a slider lab pauses it for a whole move) keeps it off, and its generations as they were: when
to collect is then the caller's decision.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Switch the cyclic garbage collector off for the block (see the module docstring)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()  # every tracked object to the permanent generation ...
                gc.unfreeze()  # ... and back into the oldest one: the run's objects are not young
            gc.enable()
