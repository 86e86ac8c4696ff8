"""Embeddings already computed, keyed by model id and text hash: only changed text is embedded again.

One SQLite file (the standard library's; safe across processes and crash-safe by
its journal).  A build looks every text up before embedding and stores what it
embedded, so re-adding, replacing or rebuilding costs model time only for text
the cache has never seen with this model.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np

_SCHEMA = """CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL, key TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID"""
_CHUNK = 500  # SQLite's default limit on bound variables is 32,766; stay far below it


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, path: Path, model_id: str, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self.model_id, self.dim = path, model_id, dim
        self._db = sqlite3.connect(path, timeout=60, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def get(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` that have one, by text."""
        keys = {text_key(t): t for t in texts}
        found: dict[str, np.ndarray] = {}
        key_list = list(keys)
        with self._lock:
            for i in range(0, len(key_list), _CHUNK):
                chunk = key_list[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE model = ? AND key IN ({marks})",
                                        [self.model_id, *chunk]).fetchall()
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if len(vector) == self.dim:  # a damaged row is simply embedded again
                        found[keys[key]] = vector
        return found

    def put(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = [(self.model_id, text_key(t), np.asarray(v, dtype=np.float32).tobytes()) for t, v in zip(texts, vectors)]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
