"""Knowledge bases: list them (``GET /kbs``), create one and delete one (admin token).

Everything else about a knowledge base is the routes the server has for its default one,
under ``/kbs/{kb}``: ``/kbs/{kb}/ask``, ``/kbs/{kb}/search``, ``/kbs/{kb}/documents`` …
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from api.deps import KbPath, may_read, require_admin
from api.schemas import ERRORS, ErrorOut, KnowledgeBaseIn, KnowledgeBaseOut
from qa.kbs import DEFAULT

router = APIRouter(prefix="/kbs", tags=["knowledge bases"], responses=ERRORS)
ADMIN = {s: {"model": ErrorOut} for s in (403, 404, 409, 422)}


def _out(request: Request, name: str) -> KnowledgeBaseOut:
    pool = request.app.state.kbs
    kb, settings = pool.kbs.get(name), pool.kbs.settings(name)
    documents, passages = pool.kbs.size(name)
    return KnowledgeBaseOut(name=kb.name, title=kb.title, created_at=kb.created_at, documents=documents,
                            passages=passages, loaded=name == DEFAULT or name in pool.loaded(),
                            passage_chars=settings.passage_chars, no_answer_threshold=settings.no_answer_threshold)


@router.get("", response_model=list[KnowledgeBaseOut])
def list_kbs(request: Request):
    """Every knowledge base, the default first: its title, size and settings."""
    return [_out(request, name) for name in request.app.state.kbs.kbs.names() if may_read(request, name)]


@router.post("", response_model=KnowledgeBaseOut, status_code=201, dependencies=[Depends(require_admin)],
             responses=ADMIN)
def create_kb(body: KnowledgeBaseIn, request: Request):
    """Create an empty knowledge base; add documents with POST /kbs/{kb}/documents."""
    overrides = {k: v for k, v in (("passage_chars", body.passage_chars),
                                   ("no_answer_threshold", body.no_answer_threshold)) if v is not None}
    request.app.state.kbs.kbs.create(body.name, body.title or "", **overrides)
    return _out(request, body.name)


@router.delete("/{kb}", status_code=204, dependencies=[Depends(require_admin)], responses=ADMIN)
def delete_kb(kb: KbPath, request: Request):
    """Delete a knowledge base with all its documents and index versions (never the default)."""
    pool = request.app.state.kbs
    pool.kbs.delete(kb)
    pool.forget(kb)
