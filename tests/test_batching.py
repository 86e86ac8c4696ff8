"""Query batching: concurrent questions share encoder calls and get exactly their own vectors."""
from __future__ import annotations

import threading
import time

import numpy as np

from qa.batching import QueryBatcher

from .conftest import FakeEncoder


class _Slow(FakeEncoder):
    """A fake encoder that takes a while, so that requests pile up behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def encode_queries(self, texts):
        self.sizes.append(len(texts))
        time.sleep(0.02)
        return super().encode_queries(texts)


def test_concurrent_requests_are_batched_and_answered_exactly():
    encoder = _Slow()
    batcher = QueryBatcher(encoder)
    questions = [f"问题{i}：社保卡能办哪些事" for i in range(40)]
    results: dict[str, np.ndarray] = {}

    def ask(q: str) -> None:
        results[q] = batcher.encode(q)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reference = FakeEncoder()
    for q in questions:
        assert np.array_equal(results[q], reference.encode_queries([q])[0])
    assert sum(encoder.sizes) == 40 and max(encoder.sizes) > 1 and batcher.batches < 40


def test_a_lone_request_is_not_held_back():
    encoder = _Slow()
    batcher = QueryBatcher(encoder)
    batcher.encode("四防是什么")
    assert encoder.sizes == [1]  # encoded at once, not kept waiting for company


def test_encoder_failures_reach_the_caller():
    class Broken(FakeEncoder):
        def encode_queries(self, texts):
            raise RuntimeError("engine failed")

    batcher = QueryBatcher(Broken())
    try:
        batcher.encode("x")
    except RuntimeError as exc:
        assert "engine failed" in str(exc)
    else:
        raise AssertionError("the failure was swallowed")
    assert np.array_equal(QueryBatcher(FakeEncoder()).encode("社保"), FakeEncoder().encode_queries(["社保"])[0])
