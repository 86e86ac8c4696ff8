"""Changing the collection while serving: upload, replace and remove documents (admin token)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile

from api.deps import AppSettings, require_admin
from api.errors import Forbidden, NotReady, TooLarge
from api.schemas import Changed, DuplicateOut, ErrorOut, LocalChange
from qa import updates
from qa.kbs import DEFAULT
from qa.remote import is_loopback
from qa.settings import Settings

router = APIRouter(prefix="/documents", tags=["documents"], dependencies=[Depends(require_admin)],
                   responses={s: {"model": ErrorOut} for s in (403, 404, 409, 413, 422)})
local = APIRouter(prefix="/admin", tags=["documents"], dependencies=[Depends(require_admin)],
                  responses={s: {"model": ErrorOut} for s in (403, 409, 413, 422)})
FORWARDED = ("x-forwarded-for", "forwarded", "x-real-ip")
Files = Annotated[list[UploadFile], File(description="one or more .md, .txt, .pdf, .docx, .html, .xlsx, .csv files, or pictures of pages (.png, .jpg, .tif) to read by OCR")]


@router.post("", response_model=Changed)
def upload(request: Request, settings: AppSettings, files: Files):
    """Add documents; answers once they are served.

    Each file becomes a new document, under its name's id or, when a document holds that id,
    under the next free one (note-2, note-3, …), so note.md never replaces note.html: replacing
    is PUT /documents/{doc_id}.  A file whose bytes a document already holds is not stored
    again; `duplicates` names it and that document.  All or nothing: a file that cannot be indexed (422), or a change that cannot be made (409),
    leaves the served version and its files exactly as they were."""
    if len(files) > settings.max_upload_files:
        raise TooLarge(f"{len(files)} files in one request; the limit is {settings.max_upload_files}")
    staged: list[updates.Upload] = []
    try:
        for f in files:
            staged.append(updates.stage_upload(settings, f.filename or "upload", _read(f, settings)))
        return _apply(request, settings, uploads=staged)
    finally:
        updates.discard(staged)  # what no change kept


@router.put("/{doc_id}", response_model=Changed)
def replace(doc_id: str, request: Request, settings: AppSettings, file: Annotated[UploadFile, File()]):
    """Replace document ``doc_id`` with the uploaded file (it keeps its id, whatever the file is called)."""
    _served(request).document(doc_id)  # 404 for an unknown id
    staged = [updates.stage_upload(settings, file.filename or "upload", _read(file, settings), doc_id=doc_id)]
    try:
        return _apply(request, settings, uploads=staged)
    finally:
        updates.discard(staged)


@router.delete("/{doc_id}", response_model=Changed)
def remove(doc_id: str, request: Request, settings: AppSettings):
    """Remove document ``doc_id`` from the index (and its file, when it was uploaded)."""
    _served(request).document(doc_id)  # 404 for an unknown id
    return _apply(request, settings, remove=[doc_id])


@local.post("/files", response_model=Changed)
def local_files(body: LocalChange, request: Request, settings: AppSettings):
    """Add, remove or sync documents from files on the server's own machine, as `qa add`, `qa
    remove` and `qa sync` do in process: the documents stay where they are, so a later sync of
    their folder finds them.  The `qa` command uses it when a server serves its index, so that
    the server's loaded model embeds them.  Only for clients on that machine (loopback)."""
    forwarded = any(request.headers.get(h) for h in FORWARDED)  # relayed by a proxy on this machine
    if request.client is None or not is_loopback(request.client.host) or forwarded:
        raise Forbidden("files on the server's machine can be named only from that machine; "
                        "upload them with POST /documents")
    if body.sync is not None:
        folder = Path(body.sync)
        if not folder.is_dir():
            raise updates.DocumentError(f"{folder}: not a folder on the server's machine")
        return _apply(request, settings, change=lambda encoder: updates.sync(settings, folder, encoder=encoder))
    documents = updates.load_documents([Path(p) for p in body.add], settings.read_limits) if body.add else []
    replacing = {doc_id: updates.replacement(doc_id, Path(path), settings) for doc_id, path in body.replace.items()}
    return _apply(request, settings, add=documents, remove=list(dict.fromkeys(body.remove)), replace_with=replacing)


def _served(request: Request):
    """The service of the knowledge base the path names (blocking: these routes run in the pool)."""
    kb = request.path_params.get("kb", DEFAULT)
    if kb == DEFAULT:
        if request.app.state.service is None:
            raise NotReady("index not loaded yet; try again in a moment")
        return request.app.state.service
    return request.app.state.kbs.service(kb)


def _read(file: UploadFile, settings: Settings) -> bytes:
    data = file.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"{file.filename}: over {settings.max_upload_bytes // (1024 * 1024)} MiB; "
                       "the limit per file is QA_MAX_UPLOAD_BYTES")
    return data


def _apply(request: Request, settings: Settings, change=None, **what) -> Changed:
    """Make the change (``updates.apply`` with ``what``, or ``change(encoder)``) and serve it."""
    state = request.app.state
    if getattr(state, "update_encoder", None) is None:
        from qa.loading import update_encoder

        state.update_encoder = update_encoder(settings)
    done = change(state.update_encoder) if change else updates.apply(settings, encoder=state.update_encoder, **what)
    kb = request.path_params.get("kb", DEFAULT)
    if kb == DEFAULT:
        state.reloader.reload()  # serve the new version before answering
    else:
        state.kbs.reload(kb)
    m = done.manifest
    return Changed(added=list(done.added), replaced=list(done.replaced), removed=list(done.removed),
                   unchanged=done.unchanged, documents=m.counts.documents, passages=m.counts.passages,
                   build_id=m.build_id, seconds=done.seconds,
                   duplicates=[DuplicateOut(file=f, doc_id=d) for f, d in done.duplicates])
