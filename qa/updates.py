"""Changing the index: build, add, replace, remove and sync documents, one writer at a time.

Every change publishes a new index version atomically (readers see the old one or
the new one), embeds only text the embedding cache has not seen with this model,
and holds the index's writer lock, so a `qa add` in a shell and an upload to the
server never interleave.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from corpus.documents import SUFFIXES, CorpusError, Document, doc_id_for, load_documents, read_document
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
          progress: bool = False) -> Change:
    """Add (or replace, by id) and remove documents; an index is created if there is none."""
    started = time.perf_counter()
    encoder = encoder or build_encoder(settings)
    with lock.writing(settings.index_dir), _cache(settings, encoder) as cache:
        exists = (settings.index_dir / "manifest.json").exists()
        previous = store.read_manifest(settings.index_dir).documents if exists else ()
        before = {d.doc_id: d.sha256 for d in previous}
        changed = [d for d in add if before.get(d.doc_id) != d.sha256]
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
        for d in previous:
            if d.doc_id in remove:
                forget_upload(settings, d.path)
    added = tuple(d.doc_id for d in changed if d.doc_id not in before)
    replaced = tuple(d.doc_id for d in changed if d.doc_id in before)
    unchanged = len(manifest.documents) - len(added) - len(replaced)
    log.info("index %s: added %s, replaced %s, removed %s", settings.index_dir, added, replaced, tuple(remove))
    return Change(added, replaced, tuple(remove), unchanged, manifest, round(time.perf_counter() - started, 2))


def sync(settings: Settings, folder: Path, encoder=None, progress: bool = False) -> Change:
    """Make the index hold exactly ``folder``'s documents: new and changed ones in, vanished ones out.

    Documents that came from elsewhere (another folder, an upload) are left alone.
    """
    documents = load_documents([folder])  # fails before anything is touched
    root = folder.resolve()
    present = {d.doc_id for d in documents}
    indexed = store.read_manifest(settings.index_dir).documents if (settings.index_dir / "manifest.json").exists() else ()
    vanished = [d.doc_id for d in indexed if Path(d.path).resolve().is_relative_to(root) and d.doc_id not in present]
    return apply(settings, add=documents, remove=vanished, encoder=encoder, progress=progress)


def supported_suffix(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return suffix if suffix in SUFFIXES else None


def save_upload(settings: Settings, filename: str, data: bytes, doc_id: str | None = None) -> Document:
    """Check an uploaded file and keep it in the documents folder, named by its id, never by the client's path.

    Only the name's last component and a supported suffix are used, and the id is made
    of letters, digits, CJK, '-' and '_' (``doc_id_for``), so no name can climb out of
    the folder.  A file that cannot be read is refused (CorpusError naming the upload)
    before anything is kept.
    """
    name = Path(filename.replace("\\", "/")).name or "upload"
    suffix = supported_suffix(name)
    if suffix is None:
        raise CorpusError(f"{name}: unsupported file type (use {listing()})")
    doc_id = doc_id or doc_id_for(Path(name))
    folder = settings.documents_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            document = read_document(Path(tmp))  # extracted once: a large PDF takes seconds
        except CorpusError as exc:
            raise CorpusError(str(exc).replace(tmp, name)) from None
        target = folder / f"{doc_id}{suffix}"
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    for other in folder.glob(f"{doc_id}.*"):  # a replacement may change the format: one file per id
        if other != target:
            other.unlink(missing_ok=True)
    return replace(document, doc_id=doc_id, path=str(target))


def forget_upload(settings: Settings, path: str) -> None:
    """Delete a removed document's file if it is one the service keeps (an upload), never anything else."""
    file = Path(path)
    if file.parent.resolve() == settings.documents_dir.resolve() and file.is_file():
        file.unlink()
