"""``python -m mock_server``: see :mod:`mock_server.cli` (or run with ``--help``)."""

from mock_server.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
