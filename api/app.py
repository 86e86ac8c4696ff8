"""The FastAPI application: wiring only. Routes are in ``api/routes``, checks in ``api/deps``."""
from __future__ import annotations

import asyncio
import signal
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api import docs, errors
from api.deps import admin_refusal, knowledge_base, require_api_key
from api.kbs import KnowledgeBasePool
from api.metrics import Metrics
from api.middleware import Admission, BodyLimit, RequestContext, SecurityHeaders, Timing
from api.ratelimit import RateLimit, TokenBuckets
from api.reload import Reloader, Watcher
from api.routes import corpus, documents, kbs, ops, qa
from qa import updates
from qa.limits import LOCAL_BODY_BYTES, MAX_BODY_BYTES
from qa.service import QAService
from qa.settings import Settings

STATIC = Path(__file__).with_name("static")
KB_PREFIX = "/kbs/{kb}"


def create_app(settings: Settings, service: QAService | None = None, clock=time.monotonic) -> FastAPI:
    """The app for ``settings``; ``service`` is served as is, else the lifespan loads one.
    ``clock`` times the clients' shares of questions (a test's own clock)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if service is not None:
            app.state.service = service
        elif getattr(app.state, "service", None) is None:  # a service attached beforehand is kept
            from qa.loading import load_service

            app.state.service = load_service(settings)
        updates.tidy_uploads(settings)  # what a killed upload left: a staged file, a file no version names
        if settings.admin_token and threading.current_thread() is threading.main_thread():
            # SIGHUP reloads like POST /admin/reload, off the event loop.
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, app.state.reloader.reload_quietly))
        watcher = Watcher(app.state.reloader, settings).start() if settings.watch_s else None
        yield
        if watcher is not None:
            watcher.stop()

    app = FastAPI(
        title="中文文档问答 · Chinese document QA",
        description="Ask in Chinese; get the passage that answers, with a citation into the original text.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by api.docs from the installed Swagger UI, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = None
    app.state.metrics = Metrics(lambda: app.state.service)
    app.state.reloader = Reloader(app.state, settings, app.state.metrics)
    app.state.kbs = KnowledgeBasePool(settings, app.state, app.state.metrics)

    errors.install(app)
    keys = [Depends(require_api_key)] if settings.api_keys or settings.kb_keys else []  # the data endpoints, when keys are set
    app.include_router(qa.router, dependencies=keys)
    app.include_router(corpus.router, dependencies=keys)
    app.include_router(documents.router)
    app.include_router(documents.local)
    app.include_router(ops.router)
    # Every knowledge base has the default's routes under /kbs/{kb} (qa/kbs.py, api/kbs.py).
    app.include_router(kbs.router, dependencies=keys)
    named = [Depends(knowledge_base)]
    app.include_router(qa.kb_router, prefix=KB_PREFIX, dependencies=named + keys)
    app.include_router(corpus.router, prefix=KB_PREFIX, dependencies=named + keys)
    app.include_router(documents.router, prefix=KB_PREFIX, dependencies=named)
    docs.install(app)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # The last added runs first: security headers → request id and crash answers → timing → CORS → the
    # client's share of questions → admission (a change to the documents judged on its headers) → body limit.
    # Path prefix → body limit: uploads get their own, larger one.
    limits = {"/documents": settings.max_upload_request_bytes, "/admin/files": LOCAL_BODY_BYTES}
    app.add_middleware(BodyLimit, default=MAX_BODY_BYTES, limits=limits, timeout_s=settings.body_timeout_s)
    app.add_middleware(Admission, refusal=lambda authorization: admin_refusal(settings, authorization))
    buckets = TokenBuckets(settings.rate_per_s, settings.rate_burst, clock) if settings.rate_per_s else None
    app.add_middleware(RateLimit, buckets=buckets, keys=settings.api_keys + tuple(settings.kb_scopes))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["authorization", "content-type", "x-api-key", "x-request-id"],
                           expose_headers=["x-request-id", "retry-after"])
    app.add_middleware(Timing, metrics=app.state.metrics)
    app.add_middleware(RequestContext)
    app.add_middleware(SecurityHeaders)
    return app
