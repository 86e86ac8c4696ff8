"""Domain errors become HTTP answers here, at the edge, and nowhere else; every answer is ``{"detail": ...}``."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from qa.kbs import EmptyKnowledgeBase, KnowledgeBaseError, KnowledgeBaseExists, UnknownKnowledgeBase
from qa.types import NotFound, Overloaded, PageUnavailable, QuestionError
from qa.updates import DocumentError, DocumentTooLarge, UpdateError


class NotReady(Exception):
    """No index is loaded yet (starting up)."""


class Unauthorized(Exception):
    """A data endpoint needs an API key and the request has none that matches."""


class Forbidden(Exception):
    """An admin endpoint without the admin token, or with admin endpoints disabled."""


class ReloadFailed(Exception):
    """A reload could not load the index; the previous one keeps serving."""


class TooLarge(Exception):
    """An upload over its limits (the body limit itself is enforced by the middleware)."""


ERROR_STATUS = {QuestionError: 422, NotFound: 404, Unauthorized: 401, Forbidden: 403, ReloadFailed: 409,
                NotReady: 503, TooLarge: 413, DocumentError: 422, DocumentTooLarge: 413,
                UpdateError: 409, KnowledgeBaseError: 422, UnknownKnowledgeBase: 404, KnowledgeBaseExists: 409,
                EmptyKnowledgeBase: 409, PageUnavailable: 410}
ERROR_HEADERS = {Unauthorized: {"WWW-Authenticate": "Bearer"}}
JSON_ONLY = "the request body must be JSON, sent with content-type: application/json"


def validation_message(exc: RequestValidationError, content_type: str | None) -> str:
    """One line naming each field that failed and why."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "request body is not valid JSON"
    if any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errors) and not _is_json(content_type):
        return JSON_ONLY
    parts = []
    for err in errors:
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def body_message(cause: BaseException | None) -> str:
    """Why FastAPI could not read a JSON body (it answers 400 "error parsing the body" for all of these)."""
    if isinstance(cause, UnicodeError):
        return "request body is not valid UTF-8 JSON"
    if isinstance(cause, RecursionError):
        return "request body is nested too deeply to be a question"
    return "request body could not be read as JSON"


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of this path answers (GET implies HEAD, as Starlette serves it)."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE and getattr(route, "methods", None):
            methods |= set(route.methods)
    return sorted(methods)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def install(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into JSON answers."""

    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc, request.headers.get("content-type"))}, 422)

    async def on_http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI or Starlette could not parse the body (JSON or multipart)
            detail = body_message(exc.__cause__) if exc.__cause__ is not None else f"request body could not be read: {exc.detail}"
            return JSONResponse({"detail": detail}, 422)
        if exc.status_code == 405:  # Starlette names only the first route of the path; a path may have several
            allowed = allowed_methods(request)
            return JSONResponse({"detail": f"{request.method} is not allowed here; use {', '.join(allowed)}"}, 405,
                                headers={"Allow": ", ".join(allowed)})
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)

    def domain(status: int, headers: dict[str, str] | None):
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status, headers=headers)

        return handler

    async def on_overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 503, headers={"Retry-After": str(exc.retry_after)})

    app.add_exception_handler(Overloaded, on_overloaded)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    for error, status in ERROR_STATUS.items():
        app.add_exception_handler(error, domain(status, ERROR_HEADERS.get(error)))
