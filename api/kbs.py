"""The knowledge bases a server answers for: loaded on first use, the least recently asked let go.

The default knowledge base is ``app.state.service`` as ever; the others (``qa/kbs.py``) load
when first asked, sharing the default's query encoder, its batching worker and its reader,
so one costs its index only (passages, vectors, BM25), never a second model.  At most
``QA_KBS_LOADED`` are held; loading one more lets the least recently asked go (requests in
flight finish on it).  A version published by another process (`qa --kb NAME add`) is
picked up on the next question after ``QA_WATCH_S`` seconds, as the default's watcher does.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from types import SimpleNamespace

from api.reload import Reloader
from qa.kbs import EmptyKnowledgeBase, KnowledgeBases
from qa.service import QAService
from qa.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class _Loaded:
    state: SimpleNamespace  # .service, as Reloader swaps it
    reloader: Reloader
    checked: float  # when the published version was last compared with the served one
    mb: float = 0.0  # its index's size (KnowledgeBases.footprint_mb)


class KnowledgeBasePool:
    def __init__(self, settings: Settings, default_state, metrics, clock=time.monotonic) -> None:
        self.kbs = KnowledgeBases(settings)
        self.settings, self.default_state, self.metrics, self.clock = settings, default_state, metrics, clock
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()  # least recently asked first
        self._lock = threading.Lock()  # one load at a time; asks of loaded ones wait only for that

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def service(self, name: str) -> QAService:
        """The service of knowledge base ``name`` (blocking: call it off the event loop)."""
        from qa.loading import current_build_id, load_service

        settings = self.kbs.settings(name)  # UnknownKnowledgeBase
        with self._lock:
            entry = self._loaded.get(name)
            now = self.clock()
            if entry is not None and now - entry.checked < self.settings.watch_s:
                self._loaded.move_to_end(name)
                return entry.state.service
            published = current_build_id(settings)
            if published is None:
                self._loaded.pop(name, None)
                raise EmptyKnowledgeBase(f"knowledge base {name!r} holds no documents yet; "
                                         f"upload some (POST /kbs/{name}/documents)")
            if entry is not None and entry.state.service.info().build_id == published:
                entry.checked = now
            elif entry is not None:
                entry.reloader.reload()
                entry.checked, entry.mb = now, self.kbs.footprint_mb(name)
            else:
                state = SimpleNamespace(service=load_service(settings, previous=self.default_state.service))
                entry = self._loaded[name] = _Loaded(state, Reloader(state, settings, self.metrics), now,
                                                     self.kbs.footprint_mb(name))
                log.info("knowledge base %s loaded (%.1f MB; %d held)", name, entry.mb, len(self._loaded))
            self._loaded.move_to_end(name)
            # the least recently asked go while too many are held, or too much (the one asked stays)
            while len(self._loaded) > 1 and (len(self._loaded) > self.settings.kbs_loaded or
                                             sum(e.mb for e in self._loaded.values()) > self.settings.kbs_memory_mb):
                gone, left = self._loaded.popitem(last=False)
                log.info("knowledge base %s let go (least recently asked, %.1f MB)", gone, left.mb)
            return entry.state.service

    def reload(self, name: str) -> None:
        """After a change through this server: serve the new version before answering."""
        with self._lock:
            entry = self._loaded.get(name)
            if entry is not None:
                entry.checked = float("-inf")  # compare the published version now
        self.service(name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)
