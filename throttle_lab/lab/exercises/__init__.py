"""Checkers for the lessons' exercises: one module per lesson, each with a ``check(...)``."""
