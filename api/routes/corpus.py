"""The indexed text: ``GET /passages/{id}``, ``GET /documents``, ``GET /documents/{doc_id}``."""
from __future__ import annotations

from fastapi import APIRouter

from api.deps import Service, ServiceIfAny
from api.schemas import ERRORS, DocumentDetail, DocumentSummary, FactOut, PassageDetail, PassageRef
from qa.types import DocumentInfo

router = APIRouter(tags=["corpus"], responses=ERRORS)


@router.get("/passages/{passage_id}", response_model=PassageDetail)
def passage(passage_id: str, service: Service):
    """One passage with its offsets into the original document."""
    hit = service.passage(passage_id)
    return PassageDetail(id=hit.passage_id, doc_id=hit.doc_id, title=hit.title, section=hit.section,
                         text=hit.text, start=hit.start, end=hit.end, page=hit.pages[0] if hit.pages else None,
                         pages=list(hit.pages))


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


def _summary(doc: DocumentInfo) -> dict:
    return dict(doc_id=doc.doc_id, title=doc.title, author=doc.author, sections=list(doc.sections),
                chars=len(doc.text), passages=doc.passages, kind=doc.kind, pages=len(doc.pages),
                page_starts=list(doc.pages), added_at=doc.added_at, genre=doc.genre, ocr_pages=list(doc.ocr_pages),
                low_confidence_pages=list(doc.low_confidence_pages))
