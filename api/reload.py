"""Reloading the index without downtime (``POST /admin/reload``, SIGHUP)."""
from __future__ import annotations

import logging
import threading

from api.errors import ReloadFailed
from qa.service import QAService
from qa.settings import Settings

log = logging.getLogger(__name__)


class Reloader:
    """Loads a fresh service and swaps it in; requests in flight finish on the old one.

    A route takes its service when it starts, so swapping the reference on ``state`` is
    atomic for every request: none sees half an index.
    """

    def __init__(self, state, settings: Settings, metrics) -> None:
        self.state, self.settings, self.metrics = state, settings, metrics
        self._lock = threading.Lock()

    def reload(self) -> QAService:
        """Load the index folder again and swap it in; ReloadFailed leaves the old one serving."""
        from qa.loading import load_service

        with self._lock:  # one reload at a time; a second waits and loads again
            try:
                fresh = load_service(self.settings, previous=getattr(self.state, "service", None))
            except Exception as exc:  # the running index stays whatever went wrong
                self.metrics.reload_failures.inc()
                log.error("reload failed, still serving the previous index: %s", exc)
                raise ReloadFailed(f"reload failed, still serving the previous index: {exc}") from None
            self.state.service = fresh
            self.metrics.reloads.inc()
            info = fresh.info()
            log.info("reloaded index %s built %s (%d passages)", info.build_id, info.built_at, info.passages)
            return fresh

    def reload_quietly(self) -> None:
        """For SIGHUP: a failure is logged and the old index keeps serving."""
        try:
            self.reload()
        except ReloadFailed:
            pass


class Watcher:
    """Picks up a version published by another process (`qa add` in a shell) without a restart.

    Every ``watch_s`` seconds it reads the build id the index link points at; when it is
    not the one being served, it reloads.  A version that fails to load is tried once,
    not every tick, and the old one keeps serving.
    """

    def __init__(self, reloader: Reloader, settings: Settings) -> None:
        self.reloader, self.settings = reloader, settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-watcher", daemon=True)
        self._failed: str | None = None

    def start(self) -> "Watcher":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def check(self) -> bool:
        """Reload if a new version is published; True when it did."""
        from qa.loading import current_build_id

        served = getattr(self.reloader.state, "service", None)
        published = current_build_id(self.settings)
        if served is None or published is None or published in (served.info().build_id, self._failed):
            return False
        try:
            self.reloader.reload()
        except ReloadFailed:
            self._failed = published
            return False
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.settings.watch_s):
            self.check()
