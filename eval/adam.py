"""Full-batch Adam from zero weights: the optimiser both trainers (span and rank) fit with."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def adam(gradient: Callable[[np.ndarray], np.ndarray], n: int, steps: int, lr: float) -> np.ndarray:
    """``n`` weights after ``steps`` Adam steps (β 0.9 / 0.999) down ``gradient(w)``; deterministic."""
    w, m, v = np.zeros(n), np.zeros(n), np.zeros(n)
    for step in range(1, steps + 1):
        grad = gradient(w)
        m = 0.9 * m + 0.1 * grad
        v = 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**step)) / (np.sqrt(v / (1 - 0.999**step)) + 1e-8)
    return w
