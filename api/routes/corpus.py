"""The indexed text: ``GET /passages/{id}``, ``GET /documents``, ``GET /documents/{doc_id}``."""
from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import Service, ServiceIfAny
from api.schemas import ERRORS, BoxOut, DocumentDetail, DocumentSummary, ErrorOut, FactOut, PassageDetail, PassageRef
from qa.types import DocumentInfo

router = APIRouter(tags=["corpus"], responses=ERRORS)


@router.get("/passages/{passage_id}", response_model=PassageDetail)
def passage(passage_id: str, service: Service):
    """One passage with its offsets into the original document."""
    hit = service.passage(passage_id)
    return PassageDetail(id=hit.passage_id, doc_id=hit.doc_id, title=hit.title, section=hit.section,
                         text=hit.text, start=hit.start, end=hit.end, page=hit.pages[0] if hit.pages else None,
                         pages=list(hit.pages), table=None if hit.table is None else vars(hit.table))


@router.get("/documents", response_model=list[DocumentSummary])
def documents(service: ServiceIfAny):
    """Every document: title, author, sections, size (none yet in a new knowledge base)."""
    return [] if service is None else [_summary(d) for d in service.documents()]


@router.get("/documents/{doc_id}", response_model=DocumentDetail)
def document(doc_id: str, service: Service):
    """One document with its original text and where each passage lies in it."""
    doc = service.document(doc_id)
    spans = [PassageRef(id=p.id, section=p.section, start=p.start, end=p.end) for p in service.passages_of(doc_id)]
    facts = [FactOut(kind=f.kind, value=f.value, start=f.start, end=f.end) for f in doc.facts]
    return DocumentDetail(**_summary(doc), text=doc.text, passage_spans=spans, facts=facts)


@router.get("/documents/{doc_id}/pages/{number}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the page as a PNG picture"},
                       410: {"model": ErrorOut}})
async def page_image(doc_id: str, number: int, request: Request, service: Service):
    """Page ``number`` (1-based) of a PDF or a picture, as a PNG picture 1,600 pixels on its longest
    side, rendered from the file the document was read from; 410 when that file is gone or has
    changed since it was indexed (the picture would not match the text).  Draw the boxes of
    GET /documents/{doc_id}/boxes over it to show a citation where it stands."""
    png = await run_in_threadpool(service.page_image, doc_id, number)  # rendering takes 90–140 ms
    tag = f'"{hashlib.sha256(png).hexdigest()[:32]}"'
    if request.headers.get("if-none-match") == tag:
        return Response(status_code=304, headers={"ETag": tag})
    return Response(png, media_type="image/png", headers={"ETag": tag, "Cache-Control": "private, max-age=300"})


@router.get("/documents/{doc_id}/boxes", response_model=list[BoxOut])
def boxes(doc_id: str, service: Service, start: Annotated[int, Query(ge=0, description="offset of the span's first character")],
          end: Annotated[int, Query(ge=1, description="offset just past its last character")]):
    """Where the characters ``[start, end)`` of the document's text lie on its pages: one box a line,
    in fractions of the page, to draw over GET /documents/{doc_id}/pages/{n}.png; empty for a
    document without page pictures (Markdown, text, Word, HTML)."""
    return [BoxOut(page=r.page, x0=r.x0, y0=r.y0, x1=r.x1, y1=r.y1) for r in service.boxes(doc_id, start, end)]


def _summary(doc: DocumentInfo) -> dict:
    return dict(doc_id=doc.doc_id, title=doc.title, author=doc.author, sections=list(doc.sections),
                chars=len(doc.text), passages=doc.passages, kind=doc.kind, pages=len(doc.pages),
                page_starts=list(doc.pages), added_at=doc.added_at, genre=doc.genre, ocr_pages=list(doc.ocr_pages),
                low_confidence_pages=list(doc.low_confidence_pages), page_images=doc.page_images)
