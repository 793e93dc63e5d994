"""Lesson 08, reference solution: a factory that reads the key's provider and builds its own throttler.

    from throttle_lab.lab.solutions.lesson08 import factory
    lesson08.check(factory)

Providers count each API key separately, so each key gets a throttler of its own -- a new one for every
key, never a shared one, or a light key would queue behind a heavy one.  Its limits are those of the key's
provider, including the window the provider enforces them over: a per-minute limit with a one-minute
burst would send a whole minute's worth at once into a ten-second bucket.
"""

from __future__ import annotations

from throttle_lab import Throttler
from throttle_lab.lab.exercises import lesson08


def factory(key: str) -> Throttler:
    """A fresh throttler with the limits of ``key``'s provider (``"provider:key-name"``)."""
    config = lesson08.PROVIDERS[lesson08.provider_of(key)]
    return Throttler(rpm=config.rpm, window=config.window, name=key)
