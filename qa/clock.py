"""Stage timings in milliseconds, as every result reports them."""
from __future__ import annotations

import time


def elapsed_ms(since: float) -> float:
    """Milliseconds since ``since`` (a ``time.perf_counter()`` reading), to 0.01 ms."""
    return round((time.perf_counter() - since) * 1000, 2)
