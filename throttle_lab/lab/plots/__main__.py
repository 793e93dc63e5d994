"""``python -m throttle_lab.lab.plots [DIRECTORY]``: write one example PNG per plot (default: ``docs/``)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

import matplotlib.pyplot as plt

from .examples import save_examples


def main(argv: Iterable[str]) -> int:
    args = list(argv)
    # Files only, no window: the Agg backend draws without a display (a CI box, a shell over ssh).
    plt.switch_backend("agg")
    for path in save_examples(args[0] if args else "docs"):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
