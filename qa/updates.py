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

from corpus.documents import (SUFFIXES, CorpusError, Document, DocumentTooLarge, Known, assign_ids, doc_id_for,
                              load_documents, read_document)
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
    # files not stored because a document holds the same bytes: (the file as named, that document's id)
    duplicates: tuple[tuple[str, str], ...] = ()


def _cache(settings: Settings, encoder) -> EmbeddingCache:
    return EmbeddingCache(settings.cache_dir / "embeddings.sqlite", encoder.model_id, encoder.dim)


def build(documents: list[Document], settings: Settings, encoder=None, progress: bool = True) -> Manifest:
    """Build a fresh index of ``documents`` at ``settings.index_dir`` (the cache spares known text).

    Two files with one name (note.md, note.html) are kept as two documents (``note``, ``note-2``);
    a file with the bytes of another is left out, with a warning naming both."""
    ids, duplicates = assign_ids(documents, [_source(d.path) for d in documents], [])
    for name, doc_id in _named(duplicates, [d.path for d in documents]):
        log.warning("%s: left out, the same bytes as document %s", name, doc_id)
    documents = [_with_id(d, i) for d, i in zip(documents, ids) if i is not None]
    encoder = encoder or build_encoder(settings)
    with lock.writing(settings.index_dir), _cache(settings, encoder) as cache:
        return build_index(documents, encoder, settings.split, settings.index_dir, progress=progress, cache=cache,
                           config=milvus_config(settings))


def _source(path: str) -> str:
    return str(Path(path).resolve())


def _with_id(document: Document, doc_id: str) -> Document:
    return document if document.doc_id == doc_id else replace(document, doc_id=doc_id)


def _named(duplicates, names: list[str]) -> list[tuple[str, str]]:
    return [(names[d.position], d.doc_id) for d in duplicates]


def apply(settings: Settings, add: list[Document] = (), remove: list[str] = (), encoder=None,
          progress: bool = False, uploads: list[Upload] = (), replace_with: dict[str, Document] | None = None
          ) -> Change:
    """Add and remove documents, and replace some explicitly; an index is created if there is none.

    What an added file becomes is ``corpus.documents.assign_ids``' rule: a file read again from
    where a document came from updates it; a file with the bytes of a document is reported, not
    stored; any other is a new document, under a fresh id when its name's id is held.  Only
    ``replace_with`` ({id: document}) and an upload staged with an id (PUT) replace a document
    by id, and that document must exist.

    ``uploads`` (``stage_upload``) are added as a transaction: their files move from the
    staging folder into the documents folder under the writer lock, each under its content
    hash, so no file the served version names is ever touched; if the change fails they are
    taken out again, and once it is published the files no version names any more go.  A
    failure or a kill at any point leaves the previous version serving with exactly its files.
    """
    started = time.perf_counter()
    replace_with = {doc_id: _with_id(d, doc_id) for doc_id, d in (replace_with or {}).items()}
    try:
        encoder = encoder or build_encoder(settings)
        with lock.writing(settings.index_dir), _cache(settings, encoder) as cache:
            exists = (settings.index_dir / "manifest.json").exists()
            previous = store.read_manifest(settings.index_dir).documents if exists else ()
            before = {d.doc_id: d.sha256 for d in previous}
            fixed = {**replace_with, **{u.document.doc_id: u.document for u in uploads if u.replaces}}
            unknown = sorted(set(fixed) - set(before))
            if unknown:
                raise store.IndexStoreError(f"no document {', '.join(unknown)} to replace")
            if len(fixed) < len(replace_with) + sum(u.replaces for u in uploads):
                raise CorpusError("one document replaced twice in one change")
            # What stays known while the change is made: removed and replaced documents' bytes may come back.
            known = [Known(d.doc_id, None if _uploaded(settings, d.path) else _source(d.path), d.sha256)
                     for d in previous if d.doc_id not in fixed and d.doc_id not in remove]
            free = [u for u in uploads if not u.replaces]
            names = [*(d.path for d in add), *(_shown(u.name) for u in free)]
            ids, duplicates = assign_ids([*add, *(u.document for u in free)],
                                         [*(_source(d.path) for d in add), *(None for _ in free)], known,
                                         reserved=frozenset(fixed) | frozenset(remove))
            local = [_with_id(d, i) for d, i in zip(add, ids) if i is not None]
            kept = [_renamed(settings, u, i) for u, i in zip(free, ids[len(add):]) if i is not None]
            kept += [u for u in uploads if u.replaces]
            add = [*local, *replace_with.values(), *(u.document for u in kept)]
            changed = [d for d in add if before.get(d.doc_id) != d.sha256]
            placed = _place(kept)
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
                    for u in [*uploads, *kept]:
                        message = message.replace(u.document.path, _shown(u.name))
                    raise type(exc)(message) from None
                raise
            _tidy(settings, manifest, previous)
    finally:
        discard(uploads)
    added = tuple(d.doc_id for d in changed if d.doc_id not in before)
    replaced = tuple(d.doc_id for d in changed if d.doc_id in before)
    unchanged = len(manifest.documents) - len(added) - len(replaced)
    dups = tuple(_named(duplicates, names))
    log.info("index %s: added %s, replaced %s, removed %s, duplicates %s", settings.index_dir, added, replaced,
             tuple(remove), dups)
    return Change(added, replaced, tuple(remove), unchanged, manifest, round(time.perf_counter() - started, 2), dups)


def sync(settings: Settings, folder: Path, encoder=None, progress: bool = False) -> Change:
    """Make the index hold exactly ``folder``'s documents: new and changed ones in, vanished ones out.

    Documents that came from elsewhere (another folder, an upload) are left alone.
    """
    documents = load_documents([folder], settings.read_limits)  # fails before anything is touched
    root = folder.resolve()
    present = {_source(d.path) for d in documents}  # a document is the file it was read from, not its name
    indexed = store.read_manifest(settings.index_dir).documents if (settings.index_dir / "manifest.json").exists() else ()
    vanished = [d.doc_id for d in indexed
                if Path(d.path).resolve().is_relative_to(root) and _source(d.path) not in present]
    return apply(settings, add=documents, remove=vanished, encoder=encoder, progress=progress)


def replacement(doc_id: str, path: Path, settings: Settings) -> Document:
    """The file at ``path`` read as the new version of document ``doc_id`` (for ``apply``'s ``replace_with``)."""
    if not path.is_file():
        raise CorpusError(f"{path}: not a file (a document is replaced by one file)")
    return replace(read_document(path, settings.read_limits), doc_id=doc_id)


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
    replaces: bool = False  # staged with an id (PUT /documents/{id}): it replaces that document


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
    fixed = doc_id is not None
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
    return Upload(name, _kept_at(settings, replace(document, doc_id=doc_id), suffix), staged, replaces=fixed)


def _kept_at(settings: Settings, document: Document, suffix: str) -> Document:
    """``document`` with the path its upload is kept at: <documents>/<sha256[:16]>/<id><suffix>."""
    return replace(document, path=str(settings.documents_dir / document.sha256[:16] / f"{document.doc_id}{suffix}"))


def _renamed(settings: Settings, upload: Upload, doc_id: str) -> Upload:
    """``upload`` kept under ``doc_id`` (``assign_ids`` gave it another than its name's)."""
    if doc_id == upload.document.doc_id:
        return upload
    document = _kept_at(settings, replace(upload.document, doc_id=doc_id), Path(upload.document.path).suffix)
    return replace(upload, document=document)


def _uploaded(settings: Settings, path: str) -> bool:
    """Whether ``path`` is a file the service keeps for an upload (it has no source outside)."""
    return Path(path).resolve().is_relative_to(settings.documents_dir.resolve())


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
