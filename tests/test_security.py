"""Issue #12 on the API side: body limits whatever the framing, slow clients, headers, damaged input, keys.

Framing and timeouts are tested over real sockets against the real uvicorn set-up of
``api.server`` (its h11 protocol, limits and timeouts), not through a test client.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from qa.limits import MAX_BODY_BYTES

ASK = b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
WAIT_S = 20  # how long a test waits for an answer the server owes it; a pass takes far less


@contextlib.contextmanager
def guarded_server(app, settings):
    """``app`` under ``api.server``'s uvicorn configuration on a free loopback port, in a thread."""
    from api.server import Config, Server
    from eval.serving import free_port

    server = Server(Config(app, settings.with_(host="127.0.0.1", port=free_port()), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.01)
    try:
        yield server.config.port
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def fast_timeouts(real_settings, service):
    """A server whose header and body deadlines are short, so slow clients are caught quickly."""
    from api.app import create_app

    settings = real_settings.with_(header_timeout_s=0.5, body_timeout_s=0.5)
    with guarded_server(create_app(settings, service=service), settings) as port:
        yield port


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes, bool]:
    """(status, headers, body, closed): one HTTP/1.1 response; closed when it said "connection: close" and did."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        body += chunk
    closed = False
    if headers.get("connection") == "close":  # then the server owes us the end of the connection too
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except TimeoutError:
            pass
    return status, headers, body[:length], closed


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


# ---- 1. the body limit, whatever the framing ----------------------------------------------

def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(fast_timeouts, real_settings, service):
    from api.app import create_app

    # body deadline long enough that only the byte count can stop this upload
    settings = real_settings.with_(body_timeout_s=60)
    with guarded_server(create_app(settings, service=service), settings) as port, connect(port) as sock:
        sock.sendall(ASK + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        while sent <= MAX_BODY_BYTES:  # a little past the limit, and no closing chunk: the body never ends
            sock.sendall(chunk(b" " * 1024))
            sent += 1024
        status, headers, body, closed = read_response(sock)
    assert status == 413 and str(MAX_BODY_BYTES) in json.loads(body)["detail"]
    assert headers["connection"] == "close" and closed


def test_a_chunked_body_under_the_limit_is_answered(fast_timeouts):
    payload = json.dumps({"question": "四防是什么？"}, ensure_ascii=False).encode()
    with connect(fast_timeouts) as sock:
        sock.sendall(ASK + b"Transfer-Encoding: chunked\r\n\r\n" + chunk(payload[:10]) + chunk(payload[10:]) + b"0\r\n\r\n")
        status, _, body, _ = read_response(sock)
    assert status == 200 and json.loads(body)["answerable"] is True


def test_a_content_length_over_the_limit_is_refused_at_once(fast_timeouts):
    with connect(fast_timeouts) as sock:
        sock.sendall(ASK + f"Content-Length: {20 * 1024 * 1024}\r\n\r\n".encode())  # no body follows
        status, headers, body, closed = read_response(sock)
    assert status == 413 and "over" in json.loads(body)["detail"] and closed


def test_the_limit_table_gives_a_path_its_own_limit():
    from api.middleware import BodyLimit

    limit = BodyLimit(app=None, default=MAX_BODY_BYTES, limits={"/documents/upload": 50_000_000})
    assert limit.limit_for("/ask") == MAX_BODY_BYTES
    assert limit.limit_for("/documents/upload") == 50_000_000


# ---- 2. slow clients ----------------------------------------------------------------------

def test_slow_headers_are_cut_off(fast_timeouts):
    with connect(fast_timeouts) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finishes its headers
        status, _, body, closed = read_response(sock)
    assert status == 408 and "headers" in json.loads(body)["detail"] and closed
    assert time.monotonic() - started < WAIT_S / 2


def test_headers_sent_byte_by_byte_do_not_reset_the_clock(fast_timeouts):
    with connect(fast_timeouts) as sock:
        sock.settimeout(0.1)
        request, sent, status = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 400, 0, None
        deadline = time.monotonic() + WAIT_S
        while status is None and time.monotonic() < deadline:
            try:
                sock.sendall(request[sent : sent + 1])  # one byte per 0.1 s: each arrives well within 0.5 s
                sent += 1
                data = sock.recv(4096)
                status = int(data.split()[1]) if data else 0
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                status = 0
    assert status in (408, 0) and sent < len(request)


def test_a_connection_that_sends_nothing_is_closed(fast_timeouts):
    with connect(fast_timeouts) as sock:
        status, _, _, closed = read_response(sock)
    assert status == 408 and closed


def test_a_slow_body_is_cut_off(fast_timeouts):
    with connect(fast_timeouts) as sock:
        sock.sendall(ASK + b"Content-Length: 100\r\n\r\n" + b'{"question": ')  # 13 of 100 bytes, then silence
        status, headers, body, closed = read_response(sock)
    assert status == 408 and "body" in json.loads(body)["detail"] and closed


def test_over_the_connection_limit_a_request_gets_503_and_then_service_resumes(real_settings, service):
    from api.app import create_app

    settings = real_settings.with_(max_connections=3, header_timeout_s=60)
    with guarded_server(create_app(settings, service=service), settings) as port:
        idle = [connect(port) for _ in range(3)]
        try:
            status, body = poll_status(port, until=503)
            assert status == 503 and "connection limit" in json.loads(body)["detail"]
        finally:
            for sock in idle:
                sock.close()
        assert poll_status(port, until=200)[0] == 200


def poll_status(port: int, until: int) -> tuple[int, bytes]:
    """GET /health on fresh connections until it answers ``until`` (or the deadline passes)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        with connect(port) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status, _, body, _ = read_response(sock)
        if status == until or time.monotonic() > deadline:
            return status, body
        time.sleep(0.02)


# ---- 3. headers, and docs that work offline --------------------------------------------------

STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@pytest.mark.parametrize("path", ["/", "/docs", "/health", "/openapi.json", "/documents/missing"])
def test_every_answer_carries_the_security_headers(client, path):
    r = client.get(path)
    assert r.headers["content-security-policy"] == STRICT_CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_docs_load_everything_from_this_server(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "<script>" not in page.text and "https://" not in page.text
    for asset in ("docs/assets/swagger-ui.css", "docs/assets/swagger-ui-bundle.js", "docs/init.js"):
        assert f'"{asset}"' in page.text
        r = client.get("/" + asset)
        assert r.status_code == 200 and len(r.content) > 100
    assert "openapi.json" in client.get("/docs/init.js").text


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.browser
def test_docs_render_in_a_browser_under_the_csp(live_server):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
    flags = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
    outside = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=flags)
        page = browser.new_page()
        page.on("request", lambda r: r.url.startswith(live_server) or r.url.startswith("data:") or outside.append(r.url))
        page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                             " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")
        page.goto(live_server + "/docs")
        page.wait_for_selector(".opblock-summary-path:has-text('/ask')", timeout=30_000)
        violations = page.evaluate("window.__csp")
        browser.close()
    assert violations == [] and outside == []


# ---- 4. damaged input ------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "word"), [
    (b'{"question": "\xff\xfe\xe4\xbd"}', "UTF-8"),
    (b'{"question": ' + b"[" * 8000 + b"]" * 8000 + b"}", "nested"),
])
def test_undecodable_bodies_get_422(client, body, word):
    r = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and word in r.json()["detail"]


@pytest.mark.parametrize("question", ["\u200b", "\u200c\u200d", "\u2060 \u200b", "\ufeff", " \ufeff\u3000\u200b "])
def test_a_question_of_invisible_characters_is_refused(client, question):
    r = client.post("/ask", json={"question": question})
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    r = client.get("/search", params={"q": question})
    assert r.status_code == 422 and "empty" in r.json()["detail"]


def test_visible_text_around_invisible_characters_is_a_question(client):
    assert client.post("/ask", json={"question": "\ufeff四防是什么？\u200b"}).status_code == 200


def test_the_schema_pattern_and_the_validator_agree():
    import re

    from api.schemas import NOT_BLANK, AskRequest

    pattern = AskRequest.model_json_schema()["properties"]["question"]["pattern"]
    assert pattern == NOT_BLANK
    for blank in ("\u200b", "\u2060", "\ufeff", " \t\u3000"):
        assert re.search(pattern, blank) is None
    assert re.search(pattern, "\u200b社保")


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_told_to_be_json(client, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post("/ask", content=json.dumps({"question": "四防是什么？"}).encode(), headers=headers)
    assert r.status_code == 422 and "application/json" in r.json()["detail"]


def test_the_admin_token_needs_the_bearer_scheme(real_settings, service):
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(real_settings.with_(admin_token="s3cret", index_dir=real_settings.index_dir), service=service)
    with TestClient(app) as c:
        assert c.post("/admin/reload", headers={"Authorization": "s3cret"}).status_code == 403
        assert c.post("/admin/reload", headers={"Authorization": "Basic s3cret"}).status_code == 403
        assert c.post("/admin/reload", headers={"Authorization": "Bearer s3cret-and-more"}).status_code == 403
        assert c.post("/admin/reload", headers={"Authorization": "Bearer s3cret"}).status_code == 200


# ---- 5. API keys, and who may connect --------------------------------------------------------

def test_api_keys_guard_the_data_endpoints(real_settings, service):
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(real_settings.with_(api_keys=("key-one", "key-two")), service=service)
    ask = {"question": "四防是什么？"}
    with TestClient(app) as c:
        r = c.post("/ask", json=ask)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "API key" in r.json()["detail"]
        assert c.post("/ask", json=ask, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/ask", json=ask, headers={"Authorization": "key-two"}).status_code == 401
        assert c.post("/ask", json=ask, headers={"Authorization": "Bearer key-two"}).status_code == 200
        assert c.get("/search", params={"q": "四防"}, headers={"X-API-Key": "key-one"}).status_code == 200
        assert c.get("/documents").status_code == 401
        assert c.get("/passages/article-p022", headers={"X-API-Key": "key-one"}).status_code == 200
        for open_path in ("/health", "/metrics", "/", "/docs", "/openapi.json"):
            assert c.get(open_path).status_code == 200, open_path


def test_api_keys_are_off_by_default(client):
    assert client.post("/ask", json={"question": "四防是什么？"}).status_code == 200


def test_api_keys_come_from_the_environment():
    from qa.settings import from_env

    assert from_env({"QA_API_KEYS": " a1, b2 ,,"}).api_keys == ("a1", "b2")
    assert "a1" not in repr(from_env({"QA_API_KEYS": "a1"}))


@pytest.mark.parametrize(("host", "keys", "public", "allowed"), [
    ("127.0.0.1", (), False, True), ("localhost", (), False, True), ("::1", (), False, True),
    ("0.0.0.0", (), False, False), ("192.0.2.7", (), False, False), ("example.org", (), False, False),
    ("0.0.0.0", ("k",), False, True), ("0.0.0.0", (), True, True),
])
def test_only_loopback_is_served_without_keys_or_public(host, keys, public, allowed):
    from api.server import ExposureError, check_exposure
    from qa.settings import Settings

    settings = Settings().with_(host=host, api_keys=keys)
    if allowed:
        check_exposure(settings, public)
    else:
        with pytest.raises(ExposureError):
            check_exposure(settings, public)


def test_qa_serve_refuses_a_public_address_without_keys(tmp_path):
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "none"), "QA_API_KEYS": ""}
    run = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--host", "0.0.0.0", "--port", "0"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("qa: error: refusing to serve on 0.0.0.0") and "--public" in lines[0]


def test_a_sane_client_request_id_is_kept_and_others_replaced(client):
    assert client.get("/health", headers={"X-Request-ID": "abc.DEF-123_x"}).headers["x-request-id"] == "abc.DEF-123_x"
    for insane in ("a" * 129, "has space", "ünï".encode(), "a/b"):
        rid = client.get("/health", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert rid != insane and len(rid) == 32
    assert len({client.get("/health").headers["x-request-id"] for _ in range(3)}) == 3


def test_httpx_streaming_upload_is_stopped_at_the_limit(fast_timeouts):
    sent = 0

    def body():
        nonlocal sent
        while sent < 20 * 1024 * 1024:
            sent += 4096
            yield b" " * 4096

    try:
        status = httpx.post(f"http://127.0.0.1:{fast_timeouts}/ask", content=body(), timeout=WAIT_S,
                            headers={"content-type": "application/json"}).status_code
    except httpx.HTTPError:  # the server answered 413 and closed while httpx was still writing
        status = None
    assert status in (413, None) and sent < 20 * 1024 * 1024
