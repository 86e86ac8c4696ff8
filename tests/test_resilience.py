"""Reloading under load, admin tokens, SIGHUP, kill -9 during a build, and the bench command."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from index.manifest import FORMAT_VERSION
from index import store
from index.build import build_index

from eval.timing import QUESTIONS

from .conftest import serving

TOKEN = "s3cret-token"


@pytest.fixture()
def admin_app(real_settings, service):
    from api.app import create_app

    return create_app(real_settings.with_(admin_token=TOKEN), service=service)


def test_admin_needs_the_token_and_is_off_without_one(admin_app, client):
    from fastapi.testclient import TestClient

    r = client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 403 and "disabled" in r.json()["detail"]
    with TestClient(admin_app) as c:
        assert c.post("/admin/reload").status_code == 403
        wrong = c.post("/admin/reload", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403 and "wrong admin token" in wrong.json()["detail"]


def test_a_failed_reload_keeps_serving(real_settings, service, tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app

    app = create_app(real_settings.with_(admin_token=TOKEN, index_dir=tmp_path / "missing"), service=service)
    with TestClient(app) as c:
        r = c.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409 and "still serving the previous index" in r.json()["detail"]
        assert c.post("/ask", json={"question": "四防是什么？"}).status_code == 200


@pytest.fixture()
def own_index(real_settings, tmp_path):
    """A private copy of the article index, so rebuilding it cannot disturb other tests."""
    target = tmp_path / "index"
    shutil.copytree(real_settings.index_dir.resolve(), tmp_path / real_settings.index_dir.resolve().name)
    target.symlink_to(real_settings.index_dir.resolve().name)
    return real_settings.with_(index_dir=target)


def _rebuild(settings, encoder) -> str:
    return build_index(load_documents([DEFAULT_CORPUS]), encoder, settings.split, settings.index_dir, progress=False).build_id


@pytest.mark.slow
def test_reload_under_concurrent_load_drops_nothing(own_index, service, st_encoder):
    from api.app import create_app

    app = create_app(own_index.with_(admin_token=TOKEN), service=service)
    with serving(app) as url:
        before = httpx.get(url + "/health").json()["build_id"]
        threads_before = sum(t.name == "query-encoder" for t in threading.enumerate())
        stop, statuses, lock = threading.Event(), [], threading.Lock()
        served = threading.Semaphore(0)

        def hammer():
            with httpx.Client(base_url=url, timeout=60) as c:
                while not stop.is_set():
                    code = c.post("/ask", json={"question": "2025年失业保险参保人数是多少？"}).status_code
                    with lock:
                        statuses.append(code)
                    served.release()

        threads = [threading.Thread(target=hammer) for _ in range(6)]
        for t in threads:
            t.start()
        built = _rebuild(own_index, st_encoder)
        r = httpx.post(url + "/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
        for _ in range(12):  # requests keep succeeding after the swap, whatever the scheduling
            assert served.acquire(timeout=60)
        stop.set()
        for t in threads:
            t.join()
        assert r.status_code == 200 and r.json()["reloaded"] is True
        assert httpx.get(url + "/health").json()["build_id"] == built != before
        assert len(statuses) >= 12 and set(statuses) == {200}
        # the reloaded service kept the running encoder and its one batching thread
        assert app.state.service._queries is service._queries
        assert sum(t.name == "query-encoder" for t in threading.enumerate()) == threads_before


@pytest.mark.slow
def test_sighup_reloads_a_running_server(own_index, st_encoder):
    from eval.serving import Client, start_server, stop_server

    proc, port, _ = start_server(own_index, env={"QA_ADMIN_TOKEN": TOKEN})
    try:
        health = lambda: json.loads(httpx.get(f"http://127.0.0.1:{port}/health").text)["build_id"]  # noqa: E731
        before = health()
        built = _rebuild(own_index, st_encoder)
        proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 60
        while health() == before and time.time() < deadline:
            time.sleep(0.1)
        assert health() == built != before
        assert Client(port).ask("四防是什么？")[0] == 200
    finally:
        assert stop_server(proc) == 0


def _kill_while_embedding(command: str, tmp_path, env) -> None:
    """Run `qa <command>` on three long new documents and SIGKILL it once embedding has visibly started."""
    docs = tmp_path / "docs"
    docs.mkdir()
    article = (DEFAULT_CORPUS / "article.md").read_text(encoding="utf-8")
    for i in range(3):  # distinct in every sentence, so embedding takes a while and nothing dedupes or is cached
        (docs / f"copy{i}.md").write_text(article.replace("。", f"（第{i}稿）。"), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "qa.cli", command, str(docs)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # The progress bar appears when embedding starts: kill there, mid-change, not after a guess of time.
    seen = b""
    deadline = time.time() + 240
    while b"Batches" not in seen and time.time() < deadline and proc.poll() is None:
        seen += os.read(proc.stderr.fileno(), 4096)
    assert proc.poll() is None and b"Batches" in seen, f"qa {command} ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_kill_9_during_a_build_leaves_the_previous_index(real_settings, tmp_path):
    index = tmp_path / "index"
    env = {**os.environ, "QA_INDEX_DIR": str(index), "QA_MODELS_DIR": str(real_settings.models_dir),
           "QA_CACHE_DIR": str(tmp_path / "cache")}
    first = subprocess.run([sys.executable, "-m", "qa.cli", "build", "--quiet"], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    manifest = store.read_manifest(index)
    _kill_while_embedding("build", tmp_path, env)
    assert store.read_manifest(index) == manifest
    store.load(index, manifest.model.id, real_settings.split)


@pytest.mark.slow
def test_bench_reports_every_figure(real_settings, tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "QA_INDEX_DIR": str(real_settings.index_dir)}
    run = subprocess.run([sys.executable, "-m", "qa.cli", "bench", "--rounds", "1", "--no-build", "--json", str(out)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "encode_ms" in run.stdout and "cold_start_s" in run.stdout
    r = json.loads(out.read_text())
    questions = len(QUESTIONS)
    assert r["encode_ms"]["n"] == r["ask_ms"]["n"] == questions
    assert r["http_1_client"]["n"] == questions and r["http_8_clients"]["n"] == 2 * questions
    for key in ("http_1_client", "http_8_clients"):
        assert r[key]["errors"] == 0 and r[key]["mismatches"] == 0
    assert r["ranker"] == "learned" and r["ask_learned_ms"] == r["ask_ms"] and r["ask_blend_ms"]["n"] == questions
    assert "learned order / blend" in run.stdout
    assert 50 < r["rss_mb_warm"] < 4000 and "build" not in r
    assert r["cli_ask_s"] > 0 and "qa ask through the running server" in run.stdout
    # a normal client, asking at the per-client rate with a key of its own, is never refused
    c = r["contention"]
    assert c["rate_per_s"] == 10 and c["alone"]["errors"] == 0
    assert all(c[f]["errors"] == 0 for f in ("flood_500", "flood_max_legal", "flood_max_ordinary", "flood_ordinary"))


@pytest.mark.slow
def test_the_txtai_comparison_searches_the_same_passages_with_the_same_model(real_settings, service):
    """`qa bench --txtai` times a real txtai index: this service's passages, its model folder, and
    a working search (its top hit for a labelled question holds the evidence)."""
    from corpus.text import squash
    from eval.compare_txtai import bench_txtai, txtai_index, txtai_rows

    embeddings, passages, version = txtai_index(real_settings)
    assert passages == service.info().passages and version == "9.14.0"
    top = embeddings.search("2025年失业保险参保人数是多少？", 1)[0]
    assert "2.49亿人" in squash(top["text"])
    r = bench_txtai(real_settings, rounds=1)
    assert r["ours_http_ms"]["n"] == r["txtai_search_ms"]["n"] == r["txtai_answered"] == len(QUESTIONS)
    assert "vs txtai 9.14.0" in txtai_rows(r)[0][0]


@pytest.mark.slow
def test_kill_9_during_an_update_loses_nothing_acknowledged(real_settings, tmp_path):
    """`qa add` killed mid-embedding: the previous version serves, every acknowledged document is there."""
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "index"), "QA_CACHE_DIR": str(tmp_path / "cache"),
           "QA_MODELS_DIR": str(real_settings.models_dir)}
    qa = [sys.executable, "-m", "qa.cli"]
    (tmp_path / "care.md").write_text("# 护理保险办法\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n", encoding="utf-8")
    acknowledged = subprocess.run([*qa, "add", str(tmp_path / "care.md"), "--quiet"], env=env,
                                  capture_output=True, text=True, timeout=300)
    assert acknowledged.returncode == 0 and "added care" in acknowledged.stdout, acknowledged.stderr
    manifest = store.read_manifest(tmp_path / "index")
    _kill_while_embedding("add", tmp_path, env)
    assert store.read_manifest(tmp_path / "index") == manifest
    index = store.load(tmp_path / "index", manifest.model.id, real_settings.split)
    assert set(index.documents) == {"care"}
    (tmp_path / "fund.txt").write_text("公积金通知\n\n住房公积金缴存比例为12%。\n", encoding="utf-8")
    after = subprocess.run([*qa, "add", str(tmp_path / "fund.txt"), "--quiet"], env=env,
                           capture_output=True, text=True, timeout=300)  # the dead writer's lock is gone
    assert after.returncode == 0, after.stderr
    assert {d.doc_id for d in store.read_manifest(tmp_path / "index").documents} == {"care", "fund"}


@pytest.mark.parametrize("manifest", [f'{{"format_version": {FORMAT_VERSION}}}', "[1]"])
def test_a_damaged_manifest_is_one_line_for_serve_and_a_plain_409_for_reload(own_index, service, manifest):
    """Issue #12: these gave a 20-line `KeyError: 'files'` traceback and a 409 saying only 'files'."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    (own_index.index_dir / "manifest.json").write_text(manifest, encoding="utf-8")
    with TestClient(create_app(own_index.with_(admin_token=TOKEN, watch_s=0), service=service)) as c:
        r = c.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 409 and "manifest.json is damaged" in r.json()["detail"]
        assert "rebuild it with `qa build`" in r.json()["detail"]
        assert c.post("/ask", json={"question": "四防是什么？"}).status_code == 200  # still serving
    env = {**os.environ, "QA_INDEX_DIR": str(own_index.index_dir), "QA_MODELS_DIR": str(own_index.models_dir)}
    run = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", "0"], env=env,
                         capture_output=True, text=True, timeout=120)
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1 and "manifest.json is damaged" in lines[0] and "qa build" in lines[0]
