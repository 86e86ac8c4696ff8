"""A real `qa serve` process on loopback, and a keep-alive client: for `qa bench` and the tests."""
from __future__ import annotations

import collections
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from qa.limits import DEFAULT_TOP_K
from qa.settings import Settings

READY_TIMEOUT_S = 120
LOG_LINES = 10_000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


class Client:
    """One keep-alive HTTP connection, like a real client would hold."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def ask(self, question: str, top_k: int = DEFAULT_TOP_K, headers: dict | None = None,
            path: str = "/ask") -> tuple[int, dict | None]:
        """(status, JSON body when 200); status 0 when the connection failed."""
        body = json.dumps({"question": question, "top_k": top_k}, ensure_ascii=False).encode()
        try:
            self.conn.request("POST", path, body=body, headers={"content-type": "application/json", **(headers or {})})
            resp = self.conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data) if resp.status == 200 else None
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, None

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            return 0, b""


def start_server(settings: Settings, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> tuple[subprocess.Popen, int, float]:
    """Launch `qa serve` on a free port; returns (process, port, seconds until /health answers 200)."""
    port = free_port()
    environ = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_MODELS_DIR": str(settings.models_dir),
               "QA_CACHE_DIR": str(settings.cache_dir), "QA_DOCUMENTS_DIR": str(settings.documents_dir),
               "QA_KBS_DIR": str(settings.kbs_dir),
               "QA_PORT": str(port), "QA_HOST": "127.0.0.1", "QA_BACKEND": settings.backend,
               "QA_MILVUS_URI": settings.milvus_uri, "QA_MILVUS_PREFIX": settings.milvus_prefix,
               "QA_MILVUS_LEXICAL": settings.milvus_lexical, **(env or {})}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", "serve", *args], env=environ,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Read its log as it comes (a full pipe would block the server at its next log line),
    # keeping the last LOG_LINES lines for server_log().
    tail: collections.deque[bytes] = collections.deque(maxlen=LOG_LINES)
    reader = threading.Thread(target=lambda: tail.extend(proc.stderr), name="qa-serve-stderr", daemon=True)
    reader.start()
    proc.log_lines, proc.log_reader = tail, reader
    deadline = started + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            reader.join(timeout=5)
            raise RuntimeError("qa serve exited: " + b"".join(tail).decode(errors="replace")[-500:])
        status, _ = Client(port, timeout=5).get("/health")
        if status == 200:
            return proc, port, round(time.perf_counter() - started, 2)
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError(f"qa serve did not answer within {READY_TIMEOUT_S} s")


def server_log(proc: subprocess.Popen) -> str:
    """What a server started by start_server logged (its last LOG_LINES lines), once it has exited."""
    proc.log_reader.join(timeout=10)
    return b"".join(proc.log_lines).decode(errors="replace")


def stop_server(proc: subprocess.Popen) -> int:
    """SIGTERM, then SIGKILL after 10 s; returns the exit status."""
    proc.terminate()
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()
