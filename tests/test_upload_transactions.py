"""Uploads are transactions (issue #21): `kill -9` of a real `qa serve` in the middle of a
replacement, and writers that queue for the lock, never leave a version that cannot be reloaded
or restarted, and a restart serves every acknowledged document."""
from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from corpus.documents import load_documents
from eval.serving import start_server, stop_server
from qa import updates

pytestmark = [pytest.mark.slow]

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CARE = "# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n"
NOTE = "# 通知\n\n## 一、比例\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n"


@pytest.fixture()
def own(real_settings, tmp_path):
    """An index of its own (care.md, and the upload note.md) for servers started as processes."""
    from qa.loading import update_encoder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "care.md").write_text(CARE, encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                                   documents_dir=tmp_path / "uploads", admin_token=TOKEN)
    encoder = update_encoder(settings)
    updates.apply(settings, add=load_documents([docs]), encoder=encoder)
    updates.apply(settings, uploads=[updates.stage_upload(settings, "note.md", NOTE.encode())], encoder=encoder)
    return settings


def _long_note() -> bytes:
    """Some 60 KB of distinct sentences: embedding them takes long enough to be interrupted."""
    return ("# 通知\n\n" + "\n\n".join(f"第{i}项：住房公积金缴存比例调整为{i % 12 + 5}%，自第{i}个月起执行。"
                                       for i in range(1500))).encode()


def _files_in(settings, where: str) -> list:
    folder = settings.documents_dir / where if where else settings.documents_dir
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("moment", ["staged", "placed"])
def test_kill_9_during_a_replacement_leaves_the_previous_version_serving(own, moment):
    proc, port, _ = start_server(own, env={"QA_ADMIN_TOKEN": TOKEN, "QA_WATCH_S": "0"})
    url = f"http://127.0.0.1:{port}"
    before = httpx.get(f"{url}/health").json()["build_id"]
    kept = sorted(_files_in(own, ""))

    def send() -> None:
        try:
            httpx.put(f"{url}/documents/note", files={"file": ("note.md", _long_note())}, headers=AUTH, timeout=300)
        except httpx.HTTPError:
            pass  # the server is killed under it

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    # Kill where the state says, not after a guess of time: the upload staged, or moved into place.
    staged = lambda: _files_in(own, updates.STAGING)  # noqa: E731
    placed = lambda: [p for p in _files_in(own, "") if p not in kept and updates.STAGING not in p.parts]  # noqa: E731
    reached = staged if moment == "staged" else placed
    deadline = time.time() + 120
    while not reached() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert reached(), f"the upload never reached '{moment}'"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sender.join(timeout=30)

    proc, port, _ = start_server(own, env={"QA_ADMIN_TOKEN": TOKEN, "QA_WATCH_S": "0"})  # the restart
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/health").json()["build_id"] == before
        assert "12%" in httpx.get(f"{url}/documents/note").json()["text"]  # the acknowledged version
        assert httpx.post(f"{url}/admin/reload", headers=AUTH).status_code == 200
        assert sorted(_files_in(own, "")) == kept  # what the kill left was cleaned at start-up
    finally:
        assert stop_server(proc) == 0


def test_writers_queue_and_every_acknowledged_change_is_what_is_served(own):
    """Two replacements of one document and an upload, sent at once: each waits for the lock,
    each 200 names a version that was served, and the last is served with its own file."""
    proc, port, _ = start_server(own, env={"QA_ADMIN_TOKEN": TOKEN, "QA_WATCH_S": "0"})
    url = f"http://127.0.0.1:{port}"
    answers: dict[str, httpx.Response] = {}

    def send(name: str, method: str, path: str, files) -> None:
        answers[name] = httpx.request(method, f"{url}{path}", files=files, headers=AUTH, timeout=300)

    jobs = [("ten", "PUT", "/documents/note", {"file": ("x.md", NOTE.replace("12%", "10%").encode())}),
            ("eight", "PUT", "/documents/note", {"file": ("y.md", NOTE.replace("12%", "8%").encode())}),
            ("fund", "POST", "/documents", [("files", ("fund.md", NOTE.replace("通知", "公积金").encode()))])]
    threads = [threading.Thread(target=send, args=job) for job in jobs]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert {n: r.status_code for n, r in answers.items()} == {"ten": 200, "eight": 200, "fund": 200}
        builds = {answers[n].json()["build_id"] for n in answers}
        assert len(builds) == 3  # one version each, one after another
        assert httpx.get(f"{url}/health").json()["build_id"] in builds
        served = httpx.get(f"{url}/documents/note").json()["text"]
        assert ("10%" in served) != ("8%" in served)  # one replacement's text, whole
        assert httpx.post(f"{url}/admin/reload", headers=AUTH).status_code == 200  # its file is the one on disk
    finally:
        assert stop_server(proc) == 0
    proc, port, _ = start_server(own, env={"QA_ADMIN_TOKEN": TOKEN, "QA_WATCH_S": "0"})
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/documents/note").json()["text"] == served
    finally:
        assert stop_server(proc) == 0
