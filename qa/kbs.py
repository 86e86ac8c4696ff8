"""Knowledge bases: named collections, each with its own documents, index versions and settings.

The default knowledge base is the configured index (``QA_INDEX_DIR``, ``QA_DOCUMENTS_DIR``):
existing users, URLs and tests see no change.  Every other one lives under ``QA_KBS_DIR``
(``var/kbs/<name>/``): ``kb.json`` (its title and setting overrides), ``index/`` (its
versions), ``documents/`` (its uploads); on Milvus its collections are its own already, named
by a hash of its index folder (``index.milvus.collection_names``).  The embedding cache is shared: the same text under the same
model is never embedded twice, whichever knowledge base it is in.

A name is what addresses a knowledge base in URLs, folders and Milvus collection names, so
it is ASCII: a lowercase letter, then up to 31 lowercase letters, digits or ``_``.  The title
says what it is in any script (``员工手册``).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from qa.settings import Settings, SettingsError, check

log = logging.getLogger(__name__)

DEFAULT = "default"
NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_TITLE_CHARS = 100
# What a knowledge base may set for itself: how its documents are cut and when it refuses.
OVERRIDES = ("passage_chars", "no_answer_threshold")
DELETE_WAIT_S = 30  # for a change in progress to finish before a delete gives up


class KnowledgeBaseError(ValueError):
    """A name that cannot be used, or a knowledge base that does not exist or already does."""


class UnknownKnowledgeBase(KnowledgeBaseError, LookupError):
    """No knowledge base of that name."""


class KnowledgeBaseExists(KnowledgeBaseError):
    """A knowledge base of that name is there already."""


class EmptyKnowledgeBase(KnowledgeBaseError):
    """A knowledge base that holds no documents yet: nothing to ask."""


@dataclass(frozen=True)
class KnowledgeBase:
    """One knowledge base as stored in its ``kb.json``."""

    name: str
    title: str
    created_at: str
    overrides: dict[str, float] = field(default_factory=dict)  # OVERRIDES' values where this one differs


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise KnowledgeBaseError(f"knowledge base name {name!r}: use a lowercase letter, then up to 31 lowercase "
                                 "letters, digits or _ (it names a folder and a URL; the title can say anything)")
    return name


def settings_for(settings: Settings, name: str, overrides: dict | None = None) -> Settings:
    """The settings of knowledge base ``name``: the default's are ``settings`` themselves."""
    if name == DEFAULT:
        return settings
    folder = settings.kbs_dir / check_name(name)
    return settings.with_(index_dir=folder / "index", documents_dir=folder / "documents", **(overrides or {}))


class KnowledgeBases:
    """The knowledge bases under ``settings.kbs_dir``, plus the default."""

    def __init__(self, settings: Settings) -> None:
        self.server = settings  # the server's settings: the default knowledge base's
        self.root = settings.kbs_dir

    def _file(self, name: str) -> Path:
        return self.root / check_name(name) / "kb.json"

    def get(self, name: str) -> KnowledgeBase:
        if name == DEFAULT:
            return KnowledgeBase(DEFAULT, "默认知识库", "")
        path = self._file(name)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownKnowledgeBase(f"no knowledge base named {name!r}") from None
        except (OSError, ValueError) as exc:
            raise KnowledgeBaseError(f"{path}: unreadable ({exc})") from None
        return KnowledgeBase(name, raw.get("title", name), raw.get("created_at", ""),
                             {k: v for k, v in raw.get("overrides", {}).items() if k in OVERRIDES})

    def settings(self, name: str) -> Settings:
        return settings_for(self.server, name, self.get(name).overrides)

    def size(self, name: str) -> tuple[int, int]:
        """(documents, passages) of its published version; (0, 0) while it holds none."""
        from index.manifest import IndexStoreError, read_manifest

        try:
            counts = read_manifest(self.settings(name).index_dir).counts
        except IndexStoreError:
            return 0, 0
        return counts.documents, counts.passages

    def footprint_mb(self, name: str) -> float:
        """The size of its served version's files: what loading it holds in memory (FAISS keeps them
        all; on Milvus the vectors are Milvus's, so this is its passages and BM25 statistics)."""
        folder = self.settings(name).index_dir.resolve()
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20 if folder.is_dir() else 0.0

    def names(self) -> list[str]:
        """The default first, then the others by name."""
        found = sorted(p.parent.name for p in self.root.glob("*/kb.json") if NAME.fullmatch(p.parent.name)) \
            if self.root.is_dir() else []
        return [DEFAULT, *(n for n in found if n != DEFAULT)]

    def create(self, name: str, title: str = "", **overrides) -> KnowledgeBase:
        check_name(name)
        if name == DEFAULT or self._file(name).exists():
            raise KnowledgeBaseExists(f"a knowledge base named {name!r} exists already")
        title = (title or name).strip()
        if not title or len(title) > MAX_TITLE_CHARS:
            raise KnowledgeBaseError(f"a title is 1 to {MAX_TITLE_CHARS} characters")
        unknown = set(overrides) - set(OVERRIDES)
        if unknown:
            raise KnowledgeBaseError(f"a knowledge base may set only {', '.join(OVERRIDES)}, not {', '.join(sorted(unknown))}")
        kb = KnowledgeBase(name, title, datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           {k: v for k, v in overrides.items() if v is not None})
        # the settings' own rules judge the overrides (a passage of 10 characters, a threshold of 7)
        try:
            check(settings_for(self.server, name, kb.overrides))
        except SettingsError as exc:
            message = str(exc)
            for key in OVERRIDES:
                message = message.replace(f"QA_{key.upper()}", key)
            raise KnowledgeBaseError(f"knowledge base {name!r}: {message}") from None
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / "kb.json", {"title": kb.title, "created_at": kb.created_at, "overrides": kb.overrides})
        log.info("knowledge base %s created (%s)", name, title)
        return kb

    def rename(self, name: str, new: str) -> KnowledgeBase:
        """Move knowledge base ``name`` to ``new`` (FAISS: its folder moves; nothing is embedded again)."""
        kb = self.get(name)
        check_name(new)
        if DEFAULT in (name, new):
            raise KnowledgeBaseError("the default knowledge base keeps its name")
        if self._file(new).exists():
            raise KnowledgeBaseExists(f"a knowledge base named {new!r} exists already")
        if self.server.backend == "milvus":
            raise KnowledgeBaseError("renaming is for FAISS knowledge bases: on Milvus its collections are named "
                                     "after its folder; create a new one and add the documents")
        os.replace(self.root / name, self.root / new)
        return KnowledgeBase(new, kb.title, kb.created_at, kb.overrides)

    def delete(self, name: str) -> None:
        """Remove knowledge base ``name`` with its index versions and uploads (never the default)."""
        if name == DEFAULT:
            raise KnowledgeBaseError("the default knowledge base cannot be deleted; remove its documents instead")
        from index import lock

        self.get(name)
        folder = self.root / name
        with lock.writing(folder / "index", wait_s=DELETE_WAIT_S):  # not while a change is being made
            if self.server.backend == "milvus" and (folder / "index" / "manifest.json").exists():
                from index import milvus
                from qa.loading import milvus_config

                milvus.drop_stale(milvus_config(self.server), folder / "index", keep=set())
            # out of sight first (a rename is atomic), then deleted: a reader never sees half of it
            gone = Path(tempfile.mkdtemp(prefix=f".deleted-{name}-", dir=self.root))
            os.replace(folder, gone / name)
        shutil.rmtree(gone, ignore_errors=True)
        log.info("knowledge base %s deleted", name)


def _write_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2)
    os.replace(tmp, path)
