"""Asking: ``POST /ask`` and ``GET /search``."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator

from api.deps import AppMetrics, Service, check_scope, get_service
from api.schemas import ERRORS, NOT_BLANK, AskManyRequest, AskRequest, AskResponse, DocId, not_blank
from qa.limits import DEFAULT_TOP_K, MAX_DOC_FILTER, MAX_QUESTION_CHARS, MAX_TOP_K
from qa.render import result_bytes
from qa.federation import ask_many
from qa.kbs import DEFAULT
from qa.types import NotFound, Result

router = APIRouter(tags=["qa"], responses=ERRORS)
kb_router = APIRouter(tags=["qa"], responses=ERRORS)  # the same routes under /kbs/{kb}
SearchQuestion = Annotated[str, Query(min_length=1, max_length=MAX_QUESTION_CHARS, description="问题",
                                      json_schema_extra={"pattern": NOT_BLANK}), AfterValidator(not_blank)]


def _answer(service, question: str, top_k: int, doc_id: str | list[str] | None, kb: str) -> tuple[Result, Response]:
    result = service.ask(question, top_k=top_k, doc_id=doc_id)
    return result, Response(result_bytes(result, service, kb), media_type="application/json")


def _answer_many(request: Request, kbs: list[str], question: str, top_k: int,
                 doc_id: str | list[str] | None) -> tuple[Result, Response]:
    """One question of several knowledge bases (qa/federation.py); runs in the thread pool.  With
    ``doc_id``, each is asked for the named documents it holds, and one holding none is left out."""
    state = request.app.state
    for kb in kbs:
        check_scope(request, kb)  # a key's other knowledge bases do not exist, to it
    services = {kb: state.service if kb == DEFAULT else state.kbs.service(kb) for kb in dict.fromkeys(kbs)}
    scopes = None
    if doc_id is not None:
        wanted = [doc_id] if isinstance(doc_id, str) else list(dict.fromkeys(doc_id))
        held = {kb: {d.doc_id for d in s.documents()} for kb, s in services.items()}
        scopes = {kb: [d for d in wanted if d in held[kb]] for kb in services}
        missing = [d for d in wanted if not any(d in h for h in held.values())]
        if missing:
            raise NotFound(f"no document with id {', '.join(repr(d) for d in missing[:5])} in these knowledge bases")
        services = {kb: s for kb, s in services.items() if scopes[kb]}
    done = ask_many(services, question, top_k, scopes)
    body = result_bytes(done.result, services[done.answer_kb], done.answer_kb, done.kbs)
    return done.result, Response(body, media_type="application/json")


# The question is answered in one trip to the thread pool, so CPU-bound retrieval never blocks
# the event loop, and its JSON is written there too, by hand: FastAPI's check of the answer
# against AskResponse and its serialisation took 0.5 ms of the loop thread per answer (a
# py-spy profile of the server), and every request shares that thread.  AskResponse still
# documents the answer; tests/test_api.py checks real answers against it.
@router.post("/ask", response_model=AskResponse)
async def ask(body: AskManyRequest, request: Request, metrics: AppMetrics):
    """Answer a question: the best passages, an extractive answer and its citation; with `kbs`, of
    several knowledge bases at once."""
    if body.kbs is not None:  # the default is asked only if named (a key may not read it)
        result, response = await run_in_threadpool(_answer_many, request, body.kbs, body.question, body.top_k,
                                                   body.doc_id)
    else:
        service = await get_service(request)
        result, response = await run_in_threadpool(_answer, service, body.question, body.top_k, body.doc_id, DEFAULT)
    metrics.result(result)
    return response


@kb_router.post("/ask", response_model=AskResponse)
async def ask_kb(body: AskRequest, request: Request, service: Service, metrics: AppMetrics):
    """Answer a question from this knowledge base."""
    result, response = await run_in_threadpool(_answer, service, body.question, body.top_k, body.doc_id,
                                               request.path_params["kb"])
    metrics.result(result)
    return response


async def search(
    request: Request,
    service: Service,
    metrics: AppMetrics,
    q: SearchQuestion,
    top_k: Annotated[int, Query(ge=1, le=MAX_TOP_K)] = DEFAULT_TOP_K,
    doc_id: Annotated[list[DocId] | None, Query(max_length=MAX_DOC_FILTER,
                                                description="ask only these documents (repeat for several)")] = None,
):
    """The same retrieval as POST /ask, for links and quick checks."""
    result, response = await run_in_threadpool(_answer, service, q, top_k, doc_id, request.path_params.get("kb", DEFAULT))
    metrics.result(result)
    return response


# the same search for the default and for every knowledge base
for _where in (router, kb_router):
    _where.add_api_route("/search", search, methods=["GET"], response_model=AskResponse)
