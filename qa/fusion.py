"""Combining dense and keyword rankings: pure functions over score arrays."""
from __future__ import annotations

import numpy as np


def ranks(scores: np.ndarray) -> np.ndarray:
    """1-based rank of each score (ties broken by position, so results are deterministic)."""
    order = np.argsort(-scores, kind="stable")
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(1, len(scores) + 1)
    return out


# k = 60 as in Cormack et al. (2009); the `hybrid` column of `qa eval` uses it.
RRF_K = 60


def rrf(rank_lists: list[np.ndarray], k: int = RRF_K) -> np.ndarray:
    """Reciprocal-rank fusion: sum of 1 / (k + rank)."""
    return np.sum([1.0 / (k + r) for r in rank_lists], axis=0)


def share(wanted: frozenset[str], present: frozenset[str]) -> float:
    """Share of ``wanted`` found in ``present`` (0 when nothing is wanted)."""
    return len(wanted & present) / len(wanted) if wanted else 0.0
