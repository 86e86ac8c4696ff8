"""The one interface every embedding model is used through."""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Encoder(Protocol):
    """Maps texts to L2-normalised float32 vectors; queries and passages may differ."""

    model_id: str
    dim: int

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model is fed for each text as a query, prompt and special tokens included."""
        ...


class EncoderError(RuntimeError):
    """The embedding model cannot be loaded or used; the message says how to fix it."""


def with_header(header: str, text: str) -> str:
    """The text as embedded and indexed: under its context header, if any."""
    return f"{header}\n{text}" if header else text
