"""Lesson 07, reference solution: cut hard, climb fast.

    from throttle_lab.lab.solutions.lesson07 import PARAMS
    lesson07.check(PARAMS)

The brownout drops the limit from 120 to 30 requests per minute, a quarter.  Halving (``decrease=0.5``)
needs two cuts just to reach it (120, 60, 30) and a third to get below, and every cut costs at least one
429 -- more while requests already sent at the old rate come back refused.  Multiplying by 0.3 gets from
120 to 36 in one cut and below 30 in two.

Cutting hard is cheap only if the rate climbs back quickly once the limit returns.  Each success adds
``increase`` requests per second, and at ``r`` requests per second there are ``r`` successes a second, so
with 0.08 the rate grows by about 8 % of itself every second: it triples in about 14 s.

A short cool-down (1 s: about one response time) makes the 429s of one burst count once, without hiding a
second, genuine signal for long.
"""

from __future__ import annotations

PARAMS = {"increase": 0.08, "decrease": 0.3, "cooldown": 1.0}
