"""Clean-text positions → original-text offsets, stored compactly as runs.

Cleaning drops characters (whitespace, emphasis markers) and turns some into a
newline or a space, so the cleaned text maps onto the original in runs of
consecutive characters.  A run ``(t, d)`` says that text position ``t`` and the
ones after it, up to the next run, sit at original offset ``d + (i - t)``.  The
map is made once, by cleaning itself, and stored with each passage: nothing has
to guess it back later.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Sequence

Runs = tuple[tuple[int, int], ...]


def runs_of(offsets: Sequence[int]) -> Runs:
    """Compress per-character original offsets into runs (one run per jump)."""
    out: list[tuple[int, int]] = []
    for i, d in enumerate(offsets):
        if not out or d != out[-1][1] + (i - out[-1][0]):
            out.append((i, d))
    return tuple(out)


def to_original(runs: Runs, i: int) -> int:
    """Original offset of clean-text position ``i``."""
    k = bisect_right(runs, (i, float("inf"))) - 1
    t, d = runs[k]
    return d + (i - t)


def original_span(runs: Runs, start: int, end: int) -> tuple[int, int]:
    """The original span ``[a, b)`` covering clean-text span ``[start, end)`` (end > start)."""
    return to_original(runs, start), to_original(runs, end - 1) + 1
