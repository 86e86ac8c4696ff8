"""Changing the index: build, add, replace, remove and sync documents, one writer at a time.

Every change publishes a new index version atomically (readers see the old one or
the new one), embeds only text the embedding cache has not seen with this model,
and holds the index's writer lock, so a `qa add` in a shell and an upload to the
server never interleave.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from corpus.documents import (SUFFIXES, CorpusError, Document, DocumentTooLarge, doc_id_for, load_documents,
                              read_document)
from corpus.formats import listing
from index import lock, store
from index.build import build_index, update_index
from index.cache import EmbeddingCache
from index.manifest import Manifest
from qa.loading import build_encoder, milvus_config
from qa.settings import Settings

log = logging.getLogger(__name__)

# The errors a change can raise, under the names the layers above use for them:
DocumentError = CorpusError  # a file that cannot be indexed; the message names it and says why
# DocumentTooLarge (a DocumentError): a file past a limit on the work it may cost (corpus.formats.Limits)
UpdateError = store.IndexStoreError  # the index cannot take the change (unknown id, left empty, busy)


@dataclass(frozen=True)
class Change:
    """What a change did, for the CLI and the API to report."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int
    manifest: Manifest
    seconds: float


def _cache(settings: Settings, encoder) -> EmbeddingCache:
    return EmbeddingCache(settings.cache_dir / "embeddings.sqlite", encoder.model_id, encoder.dim)


def build(documents: list[Document], settings: Settings, encoder=None, progress: bool = True) -> Manifest:
    """Build a fresh index of ``documents`` at ``settings.index_dir`` (the cache spares known text)."""
    encoder = encoder or build_encoder(settings)
    with lock.writing(settings.index_dir), _cache(settings, encoder) as cache:
        return build_index(documents, encoder, settings.split, settings.index_dir, progress=progress, cache=cache,
                           config=milvus_config(settings))


def apply(settings: Settings, add: list[Document] = (), remove: list[str] = (), encoder=None,
          progress: bool = False, uploads: list[Upload] = ()) -> Change:
    """Add (or replace, by id) and remove documents; an index is created if there is none.

    ``uploads`` (``stage_upload``) are added as a transaction: their files move from the
    staging folder into the documents folder under the writer lock, each under its content
    hash, so no file the served version names is ever touched; if the change fails they are
    taken out again, and once it is published the files no version names any more go.  A
    failure or a kill at any point leaves the previous version serving with exactly its files.
    """
    started = time.perf_counter()
    add = [*add, *(u.document for u in uploads)]
    try:
        _one_file_per_id(add, uploads)
        encoder = encoder or build_encoder(settings)
        with lock.writing(settings.index_dir), _cache(settings, encoder) as cache:
            exists = (settings.index_dir / "manifest.json").exists()
            previous = store.read_manifest(settings.index_dir).documents if exists else ()
            before = {d.doc_id: d.sha256 for d in previous}
            changed = [d for d in add if before.get(d.doc_id) != d.sha256]
            placed = _place(uploads)
            try:
                if not exists:
                    if remove:
                        raise store.IndexStoreError(f"no index at {settings.index_dir} to remove documents from")
                    manifest = build_index(list(add), encoder, settings.split, settings.index_dir, progress=progress,
                                           cache=cache, config=milvus_config(settings))
                elif changed or remove:
                    manifest = update_index(settings.index_dir, encoder, settings.split, changed, list(remove),
                                            progress=progress, cache=cache, config=milvus_config(settings))
                else:
                    manifest = store.read_manifest(settings.index_dir)  # nothing new: no new version
            except BaseException as exc:
                for path in placed:  # the version being served never named them
                    _drop(settings, path)
                if isinstance(exc, CorpusError):  # name an upload as its client did, never by a server path
                    message = str(exc)
                    for u in uploads:
                        message = message.replace(u.document.path, _shown(u.name))
                    raise type(exc)(message) from None
                raise
            _tidy(settings, manifest, previous)
    finally:
        discard(uploads)
    added = tuple(d.doc_id for d in changed if d.doc_id not in before)
    replaced = tuple(d.doc_id for d in changed if d.doc_id in before)
    unchanged = len(manifest.documents) - len(added) - len(replaced)
    log.info("index %s: added %s, replaced %s, removed %s", settings.index_dir, added, replaced, tuple(remove))
    return Change(added, replaced, tuple(remove), unchanged, manifest, round(time.perf_counter() - started, 2))


def _one_file_per_id(add: list[Document], uploads: list[Upload]) -> None:
    """Refuse a change that names one id twice (two uploaded files called note.md), before anything is touched."""
    for doc_id in {u.document.doc_id for u in uploads}:
        named = [u.name for u in uploads if u.document.doc_id == doc_id]
        if len(named) > 1:
            raise CorpusError(f"{' and '.join(named)} would both be document '{doc_id}'; upload them apart, or rename one")
    ids = [d.doc_id for d in add]
    if len(set(ids)) < len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise CorpusError(f"document id {', '.join(twice)} given twice in one change")


def sync(settings: Settings, folder: Path, encoder=None, progress: bool = False) -> Change:
    """Make the index hold exactly ``folder``'s documents: new and changed ones in, vanished ones out.

    Documents that came from elsewhere (another folder, an upload) are left alone.
    """
    documents = load_documents([folder], settings.read_limits)  # fails before anything is touched
    root = folder.resolve()
    present = {d.doc_id for d in documents}
    indexed = store.read_manifest(settings.index_dir).documents if (settings.index_dir / "manifest.json").exists() else ()
    vanished = [d.doc_id for d in indexed if Path(d.path).resolve().is_relative_to(root) and d.doc_id not in present]
    return apply(settings, add=documents, remove=vanished, encoder=encoder, progress=progress)


def supported_suffix(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in SUFFIXES else None


# Uploads wait in STAGING, inside the documents folder (one filesystem, so keeping one is a
# rename), and are kept as <documents>/<sha256[:16]>/<id><suffix>: a replacement has another
# path than the file it replaces, so neither is touched until the change is published.
STAGING = ".staging"
_KEPT = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class Upload:
    """An uploaded file, checked and read, waiting in the staging folder for the change that keeps it."""

    name: str  # the client's file name (its last component), for messages
    document: Document  # its ``path`` is where the change will keep it
    staged: Path


def stage_upload(settings: Settings, filename: str, data: bytes, doc_id: str | None = None) -> Upload:
    """Check an uploaded file and stage it; nothing in the documents folder changes.

    Only the name's last component and a supported suffix are used, and the id is made
    of letters, digits, CJK, '-' and '_' (``doc_id_for``), so no name can climb out of
    the folder.  A file that cannot be read is refused (CorpusError naming the upload,
    never a server path) and nothing is kept.
    """
    name = Path(filename.replace("\\", "/")).name or "upload"
    suffix = supported_suffix(name)
    if suffix is None:
        raise CorpusError(f"{_shown(name)}: unsupported file type (use {listing()})")
    if doc_id is None:
        doc_id = doc_id_for(Path(name))
        if not re.search(r"\w", Path(name).stem):  # 😀.md, -.md, ...md: no name to go by, so the content's
            doc_id = f"doc-{hashlib.sha256(data).hexdigest()[:12]}"
    staging = settings.documents_dir / STAGING / str(os.getpid())  # a process's own: see tidy_uploads
    staging.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=staging, suffix=suffix)
    staged = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        document = read_document(staged, settings.read_limits)  # extracted once: a large PDF takes seconds
    except CorpusError as exc:
        staged.unlink(missing_ok=True)
        raise type(exc)(str(exc).replace(tmp, _shown(name))) from None
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    target = settings.documents_dir / document.sha256[:16] / f"{doc_id}{suffix}"
    return Upload(name, replace(document, doc_id=doc_id, path=str(target)), staged)


def _shown(name: str) -> str:
    """A client's file name as messages show it: at most 80 characters."""
    return name if len(name) <= 80 else name[:77] + "…"


def discard(uploads: list[Upload]) -> None:
    """Delete staged files no change kept (after a refusal, or anything else)."""
    for u in uploads:
        u.staged.unlink(missing_ok=True)


def _place(uploads: list[Upload]) -> list[Path]:
    """Move staged files where their documents say; returns those that were not there already."""
    placed = []
    for u in uploads:
        target = Path(u.document.path)
        if target.is_file():  # the same content under the same id is kept already
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(u.staged, target)
        placed.append(target)
    return placed


def _drop(settings: Settings, path: Path) -> None:
    """Delete a file the service keeps (an upload), and its hash folder once empty; never anything else."""
    folder = settings.documents_dir.resolve()
    path = path.resolve()
    if not path.is_file() or not path.is_relative_to(folder):
        return
    path.unlink()
    if path.parent != folder and _KEPT.fullmatch(path.parent.name) and not any(path.parent.iterdir()):
        path.parent.rmdir()


def _tidy(settings: Settings, manifest: Manifest, previous=()) -> None:
    """After a version is published (or at start-up): the uploads it no longer names go — those the
    previous version named, and files in hash folders nobody names."""
    folder = settings.documents_dir
    if not folder.is_dir():
        return
    named = {Path(d.path).resolve() for d in manifest.documents}
    for d in previous:
        if Path(d.path).resolve() not in named:
            _drop(settings, Path(d.path))
    for sub in folder.iterdir():
        if sub.is_dir() and _KEPT.fullmatch(sub.name):
            for file in sub.iterdir():
                if file.resolve() not in named:
                    _drop(settings, file)


def tidy_uploads(settings: Settings) -> None:
    """At start-up: clean what a killed process left in the documents folder — its staged uploads
    (each process stages in a folder named by its pid; one whose process is gone is left over)
    and, unless a writer is at work, kept files no version names."""
    staging = settings.documents_dir / STAGING
    for sub in staging.iterdir() if staging.is_dir() else ():
        if sub.is_dir() and (sub.name == str(os.getpid()) or not _alive(sub.name)):
            shutil.rmtree(sub, ignore_errors=True)
    for left in settings.documents_dir.glob(".upload-*"):  # where earlier versions staged
        left.unlink(missing_ok=True)
    if not (settings.index_dir / "manifest.json").exists():
        return
    try:
        with lock.writing(settings.index_dir, wait_s=0):
            _tidy(settings, store.read_manifest(settings.index_dir))
    except store.IndexStoreError as exc:  # busy: that writer tidies when it is done; unreadable: nothing to go by
        log.info("uploads left as they are: %s", exc)


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # another user's process
        return True
    return True
