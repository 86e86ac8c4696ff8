"""The FastAPI application: thin routes over the QA service built once in the lifespan."""
from __future__ import annotations

import asyncio
import hmac
import logging
import signal
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from api.schemas import (
    MAX_QUESTION, MAX_TOP_K, NOT_BLANK, AskRequest, AskResponse, DocumentDetail, DocumentSummary, ErrorOut, Health,
    PassageDetail, PassageRef, Reloaded,
)
from qa.render import result_json
from qa.service import QAService
from qa.settings import Settings
from qa.types import NotFound, QuestionError

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
MAX_BODY = 16 * 1024
ERRORS = {400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}}


def get_service(request: Request) -> QAService:
    service = getattr(request.app.state, "service", None)
    if service is None:  # only reachable while starting up or after a failed reload
        raise NotReady("index not loaded yet")
    return service


Service = Annotated[QAService, Depends(get_service)]


class NotReady(Exception):
    pass


class Forbidden(Exception):
    pass


class ReloadFailed(Exception):
    pass


# Domain errors become HTTP answers here, at the edge, and nowhere else.
ERROR_STATUS = {QuestionError: 422, NotFound: 404, Forbidden: 403, ReloadFailed: 409, NotReady: 503}


class Reloader:
    """Loads a fresh service and swaps it in; requests in flight finish on the old one.

    A route takes its service when it starts, so swapping the reference on
    ``app.state`` is atomic for every request: none sees half an index.
    """

    def __init__(self, app: FastAPI, settings: Settings) -> None:
        self.app, self.settings = app, settings
        self._lock = threading.Lock()

    def reload(self) -> QAService:
        """Load the index folder again and swap it in; ReloadFailed leaves the old one serving."""
        from qa.loading import load_service

        with self._lock:  # one reload at a time; a second waits and loads again
            try:
                fresh = load_service(self.settings, previous=getattr(self.app.state, "service", None))
            except Exception as exc:  # the running index stays whatever went wrong
                log.error("reload failed, still serving the previous index: %s", exc)
                raise ReloadFailed(f"reload failed, still serving the previous index: {exc}") from None
            self.app.state.service = fresh
            log.info("reloaded index %s (%d passages)", fresh.index.folder, len(fresh.index.passages))
            return fresh


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        msg = err.get("msg", "invalid")
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request"


def _error_response(status: int):
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status)

    return handler


def create_app(settings: Settings, service: QAService | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service is not None:
            app.state.service = service
        elif getattr(app.state, "service", None) is None:  # a service attached beforehand is kept
            from qa.loading import load_service

            app.state.service = load_service(settings)
        loop = asyncio.get_running_loop()
        if settings.admin_token and threading.current_thread() is threading.main_thread():
            # SIGHUP reloads like POST /admin/reload, off the event loop.
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _quiet_reload))
        yield

    def _quiet_reload() -> None:
        try:
            app.state.reloader.reload()
        except ReloadFailed:
            pass

    app = FastAPI(
        title="中文文档问答 · Chinese document QA",
        description="Ask in Chinese; get the passage that answers, with a citation into the original text.",
        version="0.1.0",
        lifespan=lifespan,
    )

    app.state.reloader = Reloader(app, settings)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"])

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    for error, status in ERROR_STATUS.items():
        app.add_exception_handler(error, _error_response(status))

    # Plain `def` routes: FastAPI runs them in its thread pool, so CPU-bound
    # retrieval never blocks the event loop.
    @app.post("/ask", response_model=AskResponse, responses=ERRORS, tags=["qa"])
    def ask(body: AskRequest, service: Service):
        """Answer a question: the best passages, an extractive answer and its citation."""
        result = service.ask(body.question, top_k=body.top_k, doc_id=body.doc_id)
        return result_json(result, service)

    @app.get("/search", response_model=AskResponse, responses=ERRORS, tags=["qa"])
    def search(
        service: Service,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUESTION, description="问题",
                                json_schema_extra={"pattern": NOT_BLANK})],
        top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = 5,
        doc_id: Annotated[str | None, Query(max_length=200)] = None,
    ):
        """The same retrieval as POST /ask, for links and quick checks."""
        result = service.ask(q, top_k=top_k, doc_id=doc_id)
        return result_json(result, service)

    @app.get("/passages/{passage_id}", response_model=PassageDetail, responses=ERRORS, tags=["corpus"])
    def passage(passage_id: str, service: Service):
        hit, _ = service.passage(passage_id)
        return PassageDetail(id=hit.passage_id, doc_id=hit.doc_id, title=hit.title, section=hit.section,
                             text=hit.text, start=hit.start, end=hit.end)

    def summary(service: QAService, doc) -> dict:
        return dict(doc_id=doc.doc_id, title=doc.title, author=doc.author, sections=list(doc.sections),
                    chars=len(doc.text), passages=len(service.passages_of(doc.doc_id)))

    @app.get("/documents", response_model=list[DocumentSummary], tags=["corpus"])
    def documents(service: Service):
        return [summary(service, d) for d in service.documents()]

    @app.get("/documents/{doc_id}", response_model=DocumentDetail, responses=ERRORS, tags=["corpus"])
    def document(doc_id: str, service: Service):
        doc = service.document(doc_id)
        spans = [PassageRef(id=p.id, section=p.section, start=p.start, end=p.end) for p in service.passages_of(doc_id)]
        return DocumentDetail(**summary(service, doc), text=doc.text, passage_spans=spans)

    @app.get("/health", response_model=Health, responses={503: {"model": ErrorOut}}, tags=["ops"])
    def health(service: Service):
        m = service.index.manifest
        return Health(status="ready", model=m["model"]["id"], documents=m["counts"]["documents"],
                      passages=m["counts"]["passages"], built_at=m["created_at"])

    def admin(authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.admin_token:
            raise Forbidden("admin endpoints are disabled; set QA_ADMIN_TOKEN to enable them")
        supplied = (authorization or "").removeprefix("Bearer ").encode()
        if not hmac.compare_digest(supplied, settings.admin_token.encode()):
            raise Forbidden("missing or wrong admin token (Authorization: Bearer <QA_ADMIN_TOKEN>)")

    @app.post("/admin/reload", response_model=Reloaded, dependencies=[Depends(admin)],
              responses={403: {"model": ErrorOut}, 409: {"model": ErrorOut}}, tags=["ops"])
    def reload():
        """Load the index folder again (after `qa build`) and serve it without dropping a request."""
        fresh = app.state.reloader.reload()
        m = fresh.index.manifest
        return Reloaded(reloaded=True, passages=m["counts"]["passages"], built_at=m["created_at"])

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
