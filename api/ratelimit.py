"""A per-client limit on questions: a token bucket per client, 429 with Retry-After beyond it.

A client is its API key when it sends one of ``QA_API_KEYS`` (so many users behind one
proxy address keep their own shares), else its address.  An unknown key counts as the
address: a client cannot dodge its limit by inventing keys, nor grow the table with them.
The check is made on the headers, before the body is read or a thread is taken, so a
refused question costs the server next to nothing.  The client's name is also handed to
the encoder queue (``qa.batching.client``), which serves clients in turn.

The 429 is sent once the client's next token is due (at most ``MAX_HOLD_S`` later), an
``asyncio`` sleep that costs no CPU: a client that ignores Retry-After and asks again at
once is still held to its rate, instead of looping on refusals as fast as the server can
answer them (two such clients on this 2-core machine slowed a third 2.4x, refusals or not).
"""
from __future__ import annotations

import asyncio
import hmac
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from api.deps import bearer
from api.middleware import ASGIApp, Receive, Scope, Send, _header, route_path, send_json
from qa import batching

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen go first (a full bucket loses nothing)
MAX_HOLD_S = 1.0  # the longest a refusal is held back (connections per address are capped as well)


class TokenBuckets:
    """``rate`` tokens a second up to ``burst``, one bucket per client; pure apart from the clock."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when ``client`` may go now (a token is spent), else the seconds until it may."""
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0 if tokens >= 1 - 1e-9 else (1 - tokens) / self.rate  # a token due now is not refused by rounding
            self._buckets[client] = (tokens - 1 if wait == 0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


def client_name(scope: Scope, keys: Iterable[str]) -> str:
    """``key:N`` for the N-th configured API key the request carries, else ``addr:<address>``
    (never the key itself: the name reaches logs and the queue)."""
    supplied = [_header(scope, b"x-api-key"), bearer(_header(scope, b"authorization"))]  # as require_api_key reads them
    for n, key in enumerate(keys):
        if any(s and hmac.compare_digest(s.encode(), key.encode()) for s in supplied):
            return f"key:{n}"
    address = (scope.get("client") or ("unknown",))[0]
    return f"addr:{address}"


class RateLimit:
    """Names the client of every request for the encoder queue; with ``buckets``, answers 429
    with Retry-After to a question (``paths``) beyond its client's share."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets | None, keys: tuple[str, ...],
                 paths: frozenset[str] = frozenset({"/ask", "/search"})) -> None:
        self.app, self.buckets, self.keys, self.paths = app, buckets, keys, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        name = client_name(scope, self.keys)
        if self.buckets is not None and route_path(scope.get("path", "")) in self.paths:
            wait = self.buckets.take(name)
            if wait:
                held = min(wait, MAX_HOLD_S)
                await asyncio.sleep(held)
                retry = max(0, math.ceil(wait - held))  # what is still to wait once the refusal is sent
                return await send_json(send, 429, f"too many questions from this client: at most "
                                                  f"{self.buckets.rate:g} a second (bursts of {self.buckets.burst:g}); "
                                                  f"retry in {retry} s", [(b"retry-after", str(retry).encode())])
        token = batching.client.set(name)
        try:
            await self.app(scope, receive, send)
        finally:
            batching.client.reset(token)
