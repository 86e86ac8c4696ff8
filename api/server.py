"""Running the app under uvicorn: timeouts, the connection limit, graceful shutdown, who may connect.

uvicorn times out idle keep-alive connections but not a request whose headers or body
trickle in. The body deadline is enforced in ``api.middleware.BodyLimit``; the header
deadline has to live in the HTTP protocol, since no ASGI code runs before the headers
are complete, so ``GuardedH11Protocol`` adds it to uvicorn's h11 protocol.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import signal
import threading

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api import logs
from api.middleware import send_json
from qa.remote import is_loopback
from qa.settings import Settings

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this
MAX_HEADER_BYTES = 16 * 1024  # request line and headers; more is answered 400 by h11


class ExposureError(ValueError):
    """Serving a non-loopback address with nothing to keep strangers out."""


def check_exposure(settings: Settings, public: bool) -> None:
    """Refuse a non-loopback address unless API keys are set or ``--public`` says it is meant."""
    if not is_loopback(settings.host) and not (settings.api_keys or settings.kb_keys) and not public:
        raise ExposureError(f"refusing to serve on {settings.host or 'every address'} without API keys: "
                            "set QA_API_KEYS, or pass --public to serve it to anyone who can reach it")


def _raw_response(status: str, detail: str, extra: str = "") -> bytes:
    """A whole JSON answer written to the socket by the protocol, before any ASGI code could run."""
    body = json.dumps({"detail": detail}).encode()
    head = (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class Clients:
    """Connections per client address, open and still sending headers: one event loop updates them."""

    def __init__(self) -> None:
        self.open: collections.Counter[str] = collections.Counter()
        self.pending: collections.Counter[str] = collections.Counter()
        self.refused = 0  # connections refused and closing: not counted against the server's limit

    @staticmethod
    def forget(counter: collections.Counter, address: str) -> None:
        counter[address] -= 1
        if counter[address] <= 0:
            del counter[address]  # bounded by the connections open, not by every address ever seen


async def _over_limit(scope, receive, send) -> None:
    await send_json(send, 503, "the server is at its connection limit (QA_MAX_CONNECTIONS); try again shortly",
                    [(b"connection", b"close"), (b"retry-after", b"1")])


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for request headers, a JSON 503 over the connection
    limit, and a share per client address.

    The header clock starts when a connection opens, or when the first byte of the next
    request arrives on a kept-alive one, and stops when the headers are complete; a
    connection still short of them at the deadline gets a 408 and is closed.  One address may
    hold ``max_connections_per_client`` connections, ``max_pending_per_client`` of them still
    sending headers; past either its new connection gets a 503 at once and is closed, so
    slow sockets from one address cannot fill the server's connection limit.
    """

    def __init__(self, config: Config, server_state, app_state, _loop=None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout_s = config.header_timeout_s
        self.max_connections = config.max_connections
        self.clients: Clients = config.clients
        self.per_client, self.pending_per_client = config.max_connections_per_client, config.max_pending_per_client
        self._asgi_app = self.app
        self._header_timer: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._refused = False
        self._header_bytes = 0  # of the request whose headers are arriving

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)
        if self._address is not None:
            self.clients.pending[self._address] += 1
            if self.clients.pending[self._address] > self.pending_per_client:
                self._refuse(f"{self.pending_per_client} connections from your address are already sending "
                             "their request headers; finish or close one")

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
            if self._address is not None:
                Clients.forget(self.clients.pending, self._address)

    def _headers_too_slow(self) -> None:
        self._disarm()
        if self._between_requests() and not self.transport.is_closing():
            log.debug("closing a connection whose request headers took over %g s", self.header_timeout_s)
            self.transport.write(_raw_response("408 Request Timeout",
                                               f"request headers not received within {self.header_timeout_s:g} s"))
            self.transport.close()

    def _refuse(self, detail: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(_raw_response("503 Service Unavailable", detail, "retry-after: 1\r\n"))
            self.transport.close()
            self._refused = True
            self.clients.refused += 1

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        self._address = peer[0] if isinstance(peer, tuple) and peer else None
        if self._address is not None:
            self.clients.open[self._address] += 1
        self._arm()
        if self._address is not None and self.clients.open[self._address] > self.per_client:
            self._refuse(f"{self.per_client} connections from your address are open already; reuse or close one")

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            if self._header_timer is None:
                self._arm()
            # h11 bounds only headers that arrive in pieces; 100 KB sent at once passed (issue #21)
            end = data.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end + 4
            if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self.transport.write(_raw_response("431 Request Header Fields Too Large",
                                                   f"request line and headers over {MAX_HEADER_BYTES // 1024} KiB"))
                self.transport.close()
        if self.transport.is_closing():  # refused: its bytes are not read
            return
        live = len(self.connections) - self.clients.refused  # a burst of refused sockets closes unread
        over = live > self.max_connections or len(self.tasks) >= self.max_connections
        self.app = _over_limit if over else self._asgi_app  # read by the request that these bytes may complete
        super().data_received(data)
        if not self._between_requests():
            self._disarm()
            self._header_bytes = 0

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._address is not None:
            Clients.forget(self.clients.open, self._address)
            self._address = None
        if self._refused:
            self.clients.refused -= 1
            self._refused = False
        super().connection_lost(exc)


class Config(uvicorn.Config):
    """uvicorn's configuration with this service's limits and timeouts from ``settings``."""

    def __init__(self, app, settings: Settings, **overrides) -> None:
        options = dict(host=settings.host, port=settings.port, http=GuardedH11Protocol,
                       timeout_keep_alive=KEEP_ALIVE_S, timeout_graceful_shutdown=settings.shutdown_timeout_s,
                       h11_max_incomplete_event_size=MAX_HEADER_BYTES, log_config=None,
                       # The peer is the client: uvicorn would otherwise take X-Forwarded-For from any
                       # loopback peer, so a same-host proxy passing it on would let a remote client
                       # name its own address (its share of questions, /admin/files' loopback check).
                       proxy_headers=False)
        super().__init__(app, **{**options, **overrides})
        self.header_timeout_s = settings.header_timeout_s
        self.max_connections = settings.max_connections
        self.max_connections_per_client = settings.max_connections_per_client
        self.max_pending_per_client = settings.max_pending_per_client
        self.clients = Clients()  # shared by every connection of this server


class Server(uvicorn.Server):
    """SIGTERM or SIGINT: stop accepting, let requests in flight finish (up to the shutdown timeout), exit 0.

    uvicorn re-raises the signal once it has shut down, so the process would end "killed by
    SIGTERM"; a clean, finished shutdown exits 0 here. A second Ctrl+C still forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self):
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _stop(self, sig: int, frame) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def configure_logging(settings: Settings) -> None:
    logs.configure(settings.log_format)


def serve(settings: Settings, service) -> None:
    """Serve ``service`` on ``settings.host``:``settings.port`` until SIGTERM or Ctrl+C."""
    from api.app import create_app

    Server(Config(create_app(settings, service=service), settings)).run()
