"""A running server's HTTP API as the ``qa`` command uses it.

Standard library only, and nothing of the model or the index is imported: asking a running
server costs the command about 0.1 s, where loading the service in process takes 3–5 s.
"""
from __future__ import annotations

import http.client
import ipaddress
import json
import mimetypes
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit


def index_key(folder: Path) -> str:
    """A short hash of an index folder's absolute path (not resolved: it is a link to the current
    version), for telling whether a server serves this folder without publishing the path."""
    import hashlib

    return hashlib.sha256(str(Path(folder).absolute()).encode()).hexdigest()[:16]


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1, ::ffff:127.x.x.x or localhost."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return address.is_loopback or bool(getattr(address, "ipv4_mapped", None) and address.ipv4_mapped.is_loopback)


class ServerError(Exception):
    """The server answered with an error; ``detail`` is its message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{detail} (HTTP {status})" if status else detail)
        self.status, self.detail = status, detail


class Server:
    """One server at ``url``; ``api_key`` for questions, ``admin_token`` for changes."""

    def __init__(self, url: str, api_key: str | None = None, admin_token: str | None = None,
                 timeout_s: float = 600) -> None:
        try:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            port = parts.port
        except ValueError:  # a port that is no number, an unclosed [IPv6
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(0, f"{url}: not a server address; use http://host:port")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.host, self.port = parts.hostname, port or (443 if parts.scheme == "https" else 80)
        self.https = parts.scheme == "https"
        self.api_key, self.admin_token, self.timeout_s = api_key, admin_token, timeout_s
        self.kb: str | None = None  # a knowledge base besides the default: its routes are under /kbs/<kb>

    @property
    def local(self) -> bool:
        """On this machine, serving the default knowledge base: it can read the files this command names
        (POST /admin/files changes the default only)."""
        return is_loopback(self.host) and self.kb is None

    @property
    def here(self) -> bool:
        """On this machine (this machine's secrets may go to it)."""
        return is_loopback(self.host)

    def _kb(self, path: str) -> str:
        return f"/kbs/{quote(self.kb, safe='')}{path}" if self.kb else path

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 admin: bool = False, timeout_s: float | None = None):
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = kind(self.host, self.port, timeout=timeout_s or self.timeout_s)
        sent = dict(headers or {})
        token = self.admin_token if admin else self.api_key
        if token:
            sent["authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ServerError(0, f"no answer from {self.url} ({exc})") from None
        finally:
            conn.close()
        try:
            out = json.loads(data) if data else None
        except ValueError:
            out = None
        if response.status >= 400:
            detail = out.get("detail") if isinstance(out, dict) else None
            raise ServerError(response.status, str(detail or data[:200].decode(errors="replace") or response.reason))
        if not isinstance(out, (dict, list)):  # a proxy's page, a redirect: not this API
            raise ServerError(response.status, f"{self.url}{path} did not answer with the service's JSON")
        return out

    def _json(self, method: str, path: str, payload, admin: bool = False):
        return self._request(method, path, json.dumps(payload, ensure_ascii=False).encode(),
                             {"content-type": "application/json"}, admin=admin)

    def health(self, timeout_s: float | None = None) -> dict:
        return self._request("GET", "/health", timeout_s=timeout_s)

    def ask(self, question: str, top_k: int, doc_id: str | list[str] | None = None) -> dict:
        return self._json("POST", self._kb("/ask"), {"question": question, "top_k": top_k, "doc_id": doc_id})

    def documents(self) -> list[dict]:
        return self._request("GET", self._kb("/documents"))

    def local_files(self, add: list[Path] = (), remove: list[str] = (), sync: Path | None = None,
                    replace: dict[str, Path] | None = None) -> dict:
        """Add, remove, replace or sync files on the server's machine (POST /admin/files)."""
        payload = {"sync": str(sync.resolve())} if sync else {
            "add": [str(p.resolve()) for p in add], "remove": list(remove),
            "replace": {doc_id: str(p.resolve()) for doc_id, p in (replace or {}).items()}}
        return self._json("POST", "/admin/files", payload, admin=True)

    def upload(self, files: list[Path]) -> dict:
        """Upload files (POST /documents, multipart): the server keeps its own copies."""
        body, kind = _multipart("files", files)
        return self._request("POST", self._kb("/documents"), body, {"content-type": kind}, admin=True)

    def replace(self, doc_id: str, file: Path) -> dict:
        """Replace document ``doc_id`` with ``file`` (PUT /documents/{id}, multipart)."""
        body, kind = _multipart("file", [file])
        return self._request("PUT", self._kb(f"/documents/{quote(doc_id, safe='')}"), body, {"content-type": kind},
                             admin=True)

    def delete(self, doc_id: str) -> dict:
        return self._request("DELETE", self._kb(f"/documents/{quote(doc_id, safe='')}"), admin=True)


def _multipart(field: str, files: list[Path]) -> tuple[bytes, str]:
    """A multipart/form-data body of ``files`` under ``field``, and its content type."""
    boundary = uuid.uuid4().hex
    body = bytearray()
    for path in files:
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        name = path.name.replace('"', "%22").replace("\r", "").replace("\n", "")  # as browsers send it: UTF-8
        body += (f"--{boundary}\r\ncontent-disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
                 f"content-type: {kind}\r\n\r\n").encode()
        body += path.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def serving(server: Server, build_id: str | None = None, folder: Path | None = None) -> bool:
    """Whether ``server`` answers now and serves the index version ``build_id`` from ``folder``
    (any, when None).  A short timeout: with no server there, the command goes on in process at once."""
    try:
        health = server.health(timeout_s=1.0)
    except ServerError:
        return False
    return (isinstance(health, dict) and (build_id is None or health.get("build_id") == build_id)
            and (folder is None or health.get("index_key") == index_key(folder)))
