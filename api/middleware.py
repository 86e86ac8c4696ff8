"""Pure ASGI middleware: request id and error answers, timing, security headers, body limits.

Pure ASGI (no ``BaseHTTPMiddleware``) so the body can be counted as it streams in and
the request id's context reaches the thread-pool routes.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException

from api import logs

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
CLOSE = (b"connection", b"close")

# The page, its script and styles come from this server and nothing else.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


class BodyRejected(HTTPException):
    """A body over its limit (413) or too slow (408); the connection closes after the answer."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(status, detail, headers={"connection": "close"})


async def send_json(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


_KB = re.compile(r"/kbs/[^/]+(?=/)")


def route_path(path: str) -> str:
    """The path as the default knowledge base has it: ``/kbs/{kb}/documents`` → ``/documents``, so a
    knowledge base's uploads get the upload limits and checks and its questions the question limits."""
    return _KB.sub("", path, count=1) if path.startswith("/kbs/") else path


class RequestContext:
    """Gives every request an id (the client's when sane), logs 5xx, and answers any crash with JSON 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        supplied = _header(scope, b"x-request-id")
        rid = supplied if supplied and SANE_REQUEST_ID.fullmatch(supplied) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        status: int | None = None

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error answering %s %s", scope["method"], scope["path"])
            if status is not None:
                raise  # half an answer cannot be mended; the server drops the connection
            await send_json(send_with_id, 500, f"internal error (request id {rid})")
        else:
            if status is not None and status >= 500:
                log.error("%s %s answered %d", scope["method"], scope["path"], status)
        finally:
            logs.request_id.reset(token)


class Timing:
    """Counts every request by route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics, untracked: frozenset[str] = frozenset({"/metrics"})) -> None:
        self.app, self.metrics, self.untracked = app, metrics, untracked

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500  # a crash before the answer is counted as the 500 it becomes
        tracked = scope["path"] not in self.untracked
        if tracked:
            self.metrics.in_progress.inc()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if tracked:
                self.metrics.in_progress.dec()
            self.metrics.request(route_label(scope), scope["method"], status, time.perf_counter() - started)


def route_label(scope: Scope) -> str:
    """The route template (``/passages/{passage_id}``), a mount's prefix, or ``unmatched``: few values, never ids."""
    route = getattr(scope.get("route"), "path", None)
    return route or scope.get("root_path") or "unmatched"


class SecurityHeaders:
    """Adds CSP, nosniff, frame and referrer headers to every answer (the docs page included)."""

    HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", ())}
                added = [(k, v) for k, v in self.HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", ()), *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Admission:
    """Judges a change to the documents on its headers, before a byte of its body is read or
    spooled: the admin token (``refusal`` says why not, as ``api.deps.admin_refusal``), and for
    an upload a multipart body.  FastAPI reads a form before it runs a route's dependencies, so
    without this an unauthenticated 45 MB upload was spooled to disk before its 403."""

    def __init__(self, app: ASGIApp, refusal: Callable[[str | None], str | None], prefix: str = "/documents") -> None:
        self.app, self.refusal, self.prefix = app, refusal, prefix

    def _changes(self, scope: Scope) -> bool:
        """POST /documents, PUT or DELETE /documents/{doc_id}: the routes that change documents (any
        other method or path goes on to its 404 or 405)."""
        path, method = route_path(scope.get("path", "")), scope.get("method")
        if method == "POST":
            return path == self.prefix
        one = path.startswith(self.prefix + "/") and "/" not in path[len(self.prefix) + 1:] and path != self.prefix + "/"
        return method in ("PUT", "DELETE") and one

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") == "/admin/files":
            why = self.refusal(_header(scope, b"authorization"))  # its JSON (up to 2 MiB) is read only with the token
            if why:
                return await send_json(send, 403, why, [CLOSE])
        if scope["type"] == "http" and self._changes(scope):
            why = self.refusal(_header(scope, b"authorization"))
            if why:
                return await send_json(send, 403, why, [CLOSE])
            kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if scope["method"] != "DELETE" and kind != "multipart/form-data":
                return await send_json(send, 415, "send the files as multipart/form-data "
                                                  f"(content-type is {kind or 'missing'})", [CLOSE])
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuses a body over its path's limit (413) or slower than ``timeout_s`` (408), whatever the framing.

    A Content-Length over the limit is refused before anything is read; otherwise bytes are
    counted as they arrive, so a chunked upload is stopped at the limit. The connection
    closes after such an answer, and after any answer given before the body was read whole,
    rather than reading the rest. ``limits`` maps a path prefix to its own limit
    (the longest matching prefix wins).
    """

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int] | None = None,
                 timeout_s: float | None = None) -> None:
        self.app, self.default, self.timeout_s = app, default, timeout_s
        self.limits = sorted((limits or {}).items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.limits if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(route_path(scope["path"]))
        length = _header(scope, b"content-length")
        if length is not None and not length.strip().isdigit():
            return await send_json(send, 400, "Content-Length is not a number", [CLOSE])
        if length is not None and int(length) > limit:
            return await send_json(send, 413, f"request body over {limit} bytes", [CLOSE])
        has_body = (length is not None and int(length) > 0) or _header(scope, b"transfer-encoding") is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s if self.timeout_s else None
        received, done, started = 0, not has_body, False

        async def counted_receive() -> Message:
            nonlocal received, done
            if done:
                return await receive()
            try:
                if deadline is None:
                    message = await receive()
                else:
                    message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                raise BodyRejected(408, f"request body not received within {self.timeout_s:g} s") from None
            if message["type"] != "http.request":
                done = True
                return message
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyRejected(413, f"request body over {limit} bytes")
            done = not message.get("more_body", False)
            return message

        async def send_closing(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                if not done and CLOSE not in headers:  # the rest of the body is never read: close, not drain
                    message = {**message, "headers": [*headers, CLOSE]}
            await send(message)

        try:
            await self.app(scope, counted_receive, send_closing)
        except BodyRejected as exc:  # raised outside FastAPI's handlers (they answer it themselves)
            if started:
                raise
            await send_json(send, exc.status_code, exc.detail, [CLOSE])
