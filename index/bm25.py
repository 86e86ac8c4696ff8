"""BM25 as bm25s computes it (Lucene idf, Robertson term weight), split so rows can be written once.

bm25s stores ``idf(t) · tf/(tf + k1·(1 − b + b·dl/avgdl))`` per passage and token, and
both factors move with the corpus: idf with every document added, avgdl with every
passage length.  A Milvus row written that way would be stale after the next change,
so the Milvus backend stores only the term weight under the average length of the
build that created its collection, sends idf with the query (this version's document
frequencies), and scores the few candidates exactly by recovering each token's count
from its stored weight (``exact``).  Pure functions over numbers: no engine here.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

K1, B = 1.2, 0.75  # bm25s's defaults, which index/keyword.py builds with


def length(tokens) -> int:
    """A passage's BM25 length: bm25s indexes an empty passage as one empty token."""
    return max(len(tokens), 1)


def idf(df: np.ndarray, n: int) -> np.ndarray:
    """Lucene idf per token, in float32 as bm25s keeps it (0 for a token no passage holds)."""
    df = np.asarray(df, dtype=np.float64)
    out = np.log(1 + (n - df + 0.5) / (df + 0.5))
    return np.where(df > 0, out, 0.0).astype(np.float32)


def _norm(lengths, avgdl: float) -> np.ndarray:
    return K1 * ((1 - B) + B * np.asarray(lengths, dtype=np.float64) / avgdl)


def weights(tokens, vocab: dict[str, int], avgdl: float) -> dict[int, float]:
    """A passage's stored sparse row: token id → term weight under ``avgdl`` (no idf)."""
    counts = Counter(tokens)
    ids = np.array([vocab[t] for t in counts], dtype=np.int64)
    tf = np.array(list(counts.values()), dtype=np.float64)
    w = tf / (_norm(length(tokens), avgdl) + tf)
    return dict(zip(ids.tolist(), w.astype(np.float32).tolist()))


def exact(query_ids: list[int], rows: list[dict[int, float]], lengths: np.ndarray, stored_avgdl: float,
          avgdl: float, idf_of: np.ndarray) -> np.ndarray:
    """This version's BM25 of each stored row for the query's token ids (repeats count again, as in bm25s).

    A stored weight w = tf/(K + tf) gives back tf = w·K/(1 − w), an integer, under
    the K it was written with; the term weight is then recomputed under ``avgdl``.
    Terms are added in the query's order in float32, as bm25s adds them.
    """
    out = np.zeros(len(rows), dtype=np.float32)
    if not rows:
        return out
    written, now = _norm(lengths, stored_avgdl), _norm(lengths, avgdl)
    for t in query_ids:
        w = np.array([row.get(t, 0.0) for row in rows], dtype=np.float64)
        tf = np.rint(w * written / (1 - w))
        out += (idf_of[t] * (tf / (now + tf))).astype(np.float32)
    return out
