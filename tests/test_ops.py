"""What a service owner needs: metrics, request ids in answers and logs, JSON errors, readiness, CORS, shutdown."""
from __future__ import annotations

import json
import logging
import re
import signal
import socket
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app

STAGES = ("embed", "dense", "bm25", "rerank", "answer", "total")


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in a Prometheus text exposition, None when absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if all(found.get(k) == str(v) for k, v in labels.items()):
            return float(m.group(3))
    return None


@pytest.fixture()
def fresh(real_settings, service):
    """A new app (so a new metrics registry) around the session's service."""
    with TestClient(create_app(real_settings, service=service)) as c:
        yield c


# ---- metrics -------------------------------------------------------------------------------

def test_metrics_count_requests_stages_refusals_and_the_index(fresh, service):
    fresh.post("/ask", json={"question": "四防是什么？"})
    fresh.post("/ask", json={"question": "明天北京会下雨吗？"})
    fresh.get("/search", params={"q": "社保卡能办哪些事？"})
    fresh.get("/passages/article-p999")
    r = fresh.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert sample(text, "qa_http_requests_total", route="/ask", method="POST", status="200") == 2
    assert sample(text, "qa_http_requests_total", route="/search", method="GET", status="200") == 1
    assert sample(text, "qa_http_requests_total", route="/passages/{passage_id}", method="GET", status="404") == 1
    assert sample(text, "qa_http_request_duration_seconds_count", route="/ask") == 2
    for stage in STAGES:
        assert sample(text, "qa_stage_duration_seconds_count", stage=stage) == 3, stage
    assert sample(text, "qa_refusals_total") == 1
    assert sample(text, "qa_questions_total", answerable="true") == 2
    info = service.info()
    assert sample(text, "qa_index_passages") == info.passages
    assert sample(text, "qa_index_documents") == info.documents
    assert sample(text, "qa_index_info", model=info.model, build_id=info.build_id) == 1
    assert sample(text, "qa_http_requests_in_progress") == 0  # the scrape itself is not counted
    if service.queue_depth() is not None:
        assert sample(text, "qa_encoder_queue_depth") == 0


def test_each_app_has_its_own_registry(fresh, client):
    fresh.get("/health")
    before = sample(client.get("/metrics").text, "qa_http_requests_total", route="/health", method="GET", status="200")
    fresh.get("/health")
    after = sample(client.get("/metrics").text, "qa_http_requests_total", route="/health", method="GET", status="200")
    assert before == after
    assert sample(fresh.get("/metrics").text, "qa_http_requests_total", route="/health", method="GET",
                  status="200") == 2


def test_metrics_count_reloads_and_failed_reloads(real_settings, service, tmp_path):
    ok = create_app(real_settings.with_(admin_token="t"), service=service)
    broken = create_app(real_settings.with_(admin_token="t", index_dir=tmp_path / "missing"), service=service)
    auth = {"Authorization": "Bearer t"}
    with TestClient(ok) as c:
        assert c.post("/admin/reload", headers=auth).status_code == 200
        text = c.get("/metrics").text
        assert sample(text, "qa_reloads_total") == 1 and sample(text, "qa_reload_failures_total") == 0
    with TestClient(broken) as c:
        assert c.post("/admin/reload", headers=auth).status_code == 409
        text = c.get("/metrics").text
        assert sample(text, "qa_reloads_total") == 0 and sample(text, "qa_reload_failures_total") == 1


# ---- request ids, errors, logs -------------------------------------------------------------

class Broken:
    """The real service, except that asking crashes."""

    def __init__(self, service) -> None:
        self._service = service

    def __getattr__(self, name):
        return getattr(self._service, name)

    def ask(self, *args, **kwargs):
        raise RuntimeError("boom: something nobody expected")


def test_a_crash_is_a_json_500_logged_with_the_request_id(real_settings, service, caplog):
    from api.logs import RequestIdFilter

    caplog.handler.addFilter(RequestIdFilter())
    with TestClient(create_app(real_settings, service=Broken(service))) as c, caplog.at_level(logging.INFO):
        r = c.post("/ask", json={"question": "四防是什么？"}, headers={"X-Request-ID": "crash-1"})
        metrics = c.get("/metrics").text
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"] == "crash-1"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.json() == {"detail": "internal error (request id crash-1)"}  # no traceback, no exception text
    crash = [rec for rec in caplog.records if rec.exc_info and "boom" in str(rec.exc_info[1])]
    assert crash and crash[0].request_id == "crash-1"
    assert sample(metrics, "qa_http_requests_total", route="/ask", method="POST", status="500") == 1


@pytest.mark.parametrize(("method", "path", "status"), [
    ("GET", "/documents/missing", 404), ("POST", "/ask", 422), ("GET", "/nowhere", 404), ("GET", "/health", 200),
])
def test_every_answer_has_a_request_id_and_errors_are_json(client, method, path, status):
    r = client.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == status and re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    if status >= 400:
        assert r.headers["content-type"] == "application/json" and r.json()["detail"]


def test_json_log_lines_carry_the_request_id():
    from api.logs import JsonFormatter, RequestIdFilter, request_id

    record = logging.LogRecord("qa.service", logging.ERROR, __file__, 1, "answer failed: %s", ("关键",), None)
    token = request_id.set("req-42")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["request_id"] == "req-42" and out["message"] == "answer failed: 关键" and out["level"] == "ERROR"
    assert out["logger"] == "qa.service" and out["time"].endswith("+00:00")


# ---- readiness and CORS --------------------------------------------------------------------

def test_503_while_no_index_is_loaded(real_settings):
    c = TestClient(create_app(real_settings))  # not entered: the lifespan has not loaded anything
    for method, path in (("GET", "/health"), ("POST", "/ask"), ("GET", "/documents")):
        r = c.request(method, path, json={"question": "四防是什么？"} if method == "POST" else None)
        assert r.status_code == 503 and "not loaded" in r.json()["detail"], path
    assert c.get("/metrics").status_code == 200


def test_cors_is_off_unless_origins_are_set(client, real_settings, service):
    preflight = {"Origin": "https://intranet.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-api-key"}
    r = client.options("/ask", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/ask", json={"question": "四防是什么？"}, headers={"Origin": "https://intranet.example"})
    assert "access-control-allow-origin" not in r.headers

    app = create_app(real_settings.with_(cors_origins=("https://intranet.example",)), service=service)
    with TestClient(app) as c:
        r = c.options("/ask", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://intranet.example"
        assert "x-api-key" in r.headers["access-control-allow-headers"].lower()
        r = c.post("/ask", json={"question": "四防是什么？"}, headers={"Origin": "https://intranet.example"})
        assert r.headers["access-control-allow-origin"] == "https://intranet.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        other = c.options("/ask", headers={**preflight, "Origin": "https://elsewhere.example"})
        assert other.headers.get("access-control-allow-origin") != "https://elsewhere.example"


# ---- graceful shutdown ---------------------------------------------------------------------

def _until(condition, what: str, deadline_s: float = 30):
    deadline = time.monotonic() + deadline_s
    while not (value := condition()):
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.02)
    return value


def _in_progress(port: int) -> float:
    try:
        return sample(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text, "qa_http_requests_in_progress")
    except httpx.HTTPError:
        return 0


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


@pytest.mark.slow
def test_sigterm_finishes_the_request_in_flight_then_exits_0(real_settings):
    from eval.serving import server_log, start_server, stop_server

    env = {"QA_LOG_FORMAT": "json", "QA_BODY_TIMEOUT_S": "60", "QA_SHUTDOWN_TIMEOUT_S": "60"}
    proc, port, _ = start_server(real_settings, env=env)
    try:
        body = json.dumps({"question": "四防是什么？"}, ensure_ascii=False).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(b"POST /ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"X-Request-ID: in-flight-1\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:-3])
        _until(lambda: _in_progress(port) == 1, "the request to be in flight")
        proc.send_signal(signal.SIGTERM)
        _until(lambda: _refused(port), "the server to stop accepting connections")
        sock.sendall(body[-3:])  # the request in flight completes after the signal
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        sock.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            stop_server(proc)
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(payload)["answerable"] is True
    lines = [line for line in server_log(proc).splitlines() if line.strip()]
    logged = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(e["request_id"] == "in-flight-1" and "/ask" in e["message"] for e in logged)
