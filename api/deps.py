"""Route dependencies: the service being served, the metrics, and the admin and API-key checks."""
from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.errors import Forbidden, NotReady, Unauthorized
from api.metrics import Metrics
from qa.kbs import DEFAULT, NAME, EmptyKnowledgeBase, UnknownKnowledgeBase
from qa.service import QAService
from qa.settings import Settings


# Async, though they wait for nothing: FastAPI runs a plain `def` dependency in its thread
# pool, one trip per dependency per request.
async def get_service(request: Request) -> QAService:
    """The service of the knowledge base the path names (``/kbs/{kb}/…``), else the default's."""
    service = getattr(request.app.state, "service", None)
    if service is None:  # only while starting up: the lifespan has not loaded the index yet
        raise NotReady("index not loaded yet; try again in a moment")
    kb = request.path_params.get("kb", DEFAULT)
    check_scope(request, kb)
    if kb == DEFAULT:
        return service
    return await run_in_threadpool(request.app.state.kbs.service, kb)  # may load it: seconds, off the loop


async def get_service_if_any(request: Request) -> QAService | None:
    """``get_service``, or None for a knowledge base that holds no documents yet."""
    try:
        return await get_service(request)
    except EmptyKnowledgeBase:
        return None


async def get_settings(request: Request) -> Settings:
    """The settings of the knowledge base the path names, else the server's."""
    kb = request.path_params.get("kb")
    if kb is None:
        return request.app.state.settings
    return request.app.state.kbs.kbs.settings(kb)  # UnknownKnowledgeBase: 404


KbPath = Annotated[str, Path(pattern=f"^{NAME.pattern}$", max_length=32,
                            description="the knowledge base's name (`default`: the server's own)", examples=["handbook"])]


async def knowledge_base(kb: KbPath) -> str:
    """Declares and checks ``{kb}`` for the routes under /kbs/{kb}."""
    return kb


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


Service = Annotated[QAService, Depends(get_service)]
ServiceIfAny = Annotated[QAService | None, Depends(get_service_if_any)]
AppSettings = Annotated[Settings, Depends(get_settings)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]


# Declared as security schemes, so the docs page offers an "Authorize" button; attached to
# the data routes only when QA_API_KEYS is set, so the schema says what the server does.
API_BEARER = HTTPBearer(auto_error=False, scheme_name="API key",
                        description="Authorization: Bearer <one of QA_API_KEYS> (only when QA_API_KEYS is set)")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="API key header",
                              description="X-API-Key: <one of QA_API_KEYS> (only when QA_API_KEYS is set)")
Credentials = HTTPAuthorizationCredentials | None


def _matches(supplied: str | None, secret: str) -> bool:
    return supplied is not None and hmac.compare_digest(supplied.encode(), secret.encode())


def bearer(authorization: str | None) -> str | None:
    """The credentials of ``Authorization: Bearer <credentials>`` (scheme case-insensitive), else None."""
    scheme, _, credentials = (authorization or "").partition(" ")
    return credentials if scheme.lower() == "bearer" and credentials else None


def admin_refusal(settings: Settings, authorization: str | None) -> str | None:
    """Why a request with this Authorization header may not use the admin endpoints (None: it may)."""
    if not settings.admin_token:
        return "admin endpoints are disabled; set QA_ADMIN_TOKEN to enable them"
    if not _matches(bearer(authorization), settings.admin_token):
        return "missing or wrong admin token (Authorization: Bearer <QA_ADMIN_TOKEN>)"
    return None


async def require_admin(settings: AppSettings, authorization: Annotated[str | None, Header()] = None) -> None:
    """Only ``Authorization: Bearer <QA_ADMIN_TOKEN>``; a bare token or another scheme is refused."""
    why = admin_refusal(settings, authorization)
    if why:
        raise Forbidden(why)


async def require_api_key(request: Request, token: Annotated[Credentials, Depends(API_BEARER)],
                          header: Annotated[str | None, Depends(API_KEY_HEADER)]) -> None:
    """With ``QA_API_KEYS`` or ``QA_KB_KEYS`` set, a data endpoint needs one of them as a bearer token or
    ``X-API-Key``.  A key of ``QA_KB_KEYS`` reads its knowledge bases only: any other is, to it,
    a knowledge base that does not exist (404, the same answer as for a name nobody created).
    Judged on the server's settings before anything about the knowledge base is read, so a
    client without a key learns nothing of which ones exist."""
    settings = request.app.state.settings
    scopes = settings.kb_scopes
    if not settings.api_keys and not scopes:
        return
    supplied = [s for s in (token.credentials if token else None, header) if s is not None]
    # every comparison is made, so the time taken says nothing about which key came close
    full = [_matches(s, key) for s in supplied for key in settings.api_keys]
    scoped = [(kbs, _matches(s, key)) for s in supplied for key, kbs in scopes.items()]
    if any(full):
        request.state.kb_scope = None
    else:
        granted = [kbs for kbs, ok in scoped if ok]
        if not granted:
            raise Unauthorized("missing or unknown API key (Authorization: Bearer <key> or X-API-Key: <key>)")
        request.state.kb_scope = frozenset().union(*granted)
        if "kb" in request.path_params:  # the default's scope is checked where its service is taken
            check_scope(request, request.path_params["kb"])


def check_scope(request: Request, kb: str) -> None:
    """UnknownKnowledgeBase unless this request's key may read ``kb``."""
    scope = getattr(request.state, "kb_scope", None)
    if scope is not None and kb not in scope:
        raise UnknownKnowledgeBase(f"no knowledge base named {kb!r}")


def may_read(request: Request, kb: str) -> bool:
    scope = getattr(request.state, "kb_scope", None)
    return scope is None or kb in scope
