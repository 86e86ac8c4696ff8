"""Operating the service: ``GET /health``, ``POST /admin/reload``, ``GET /metrics``."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from api.deps import AppMetrics, AppSettings, Service, require_admin
from api.schemas import ErrorOut, Health, Reloaded
from qa.remote import index_key

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=Health, responses={503: {"model": ErrorOut}})
async def health(service: Service, settings: AppSettings):
    """200 once the index is loaded: model, counts, build time."""
    info = service.info()
    return Health(status="ready", model=info.model, documents=info.documents, passages=info.passages,
                  built_at=info.built_at, build_id=info.build_id, index_key=index_key(settings.index_dir))


@router.post("/admin/reload", response_model=Reloaded, dependencies=[Depends(require_admin)],
             responses={403: {"model": ErrorOut}, 409: {"model": ErrorOut}})
def reload(request: Request):
    """Load the index folder again (after `qa build`) and serve it without dropping a request."""
    info = request.app.state.reloader.reload().info()
    return Reloaded(reloaded=True, passages=info.passages, built_at=info.built_at, build_id=info.build_id)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition"}})
def metrics(metrics: AppMetrics):
    """Prometheus metrics: requests, latency per stage, refusals, reloads, the index, the encoder queue."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE)
