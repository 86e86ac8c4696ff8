"""The HTTP API on the real article index."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from corpus.text import squash

from .conftest import BACKENDS


@pytest.fixture(scope="module")
def milvus_client(milvus_settings, milvus_service):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(milvus_settings, service=milvus_service)) as c:
        yield c


@pytest.fixture(params=BACKENDS)
def client(request, client):
    """The API's behaviour on both backends (the concurrency test below runs on FAISS)."""
    return client if request.param == "faiss" else request.getfixturevalue("milvus_client")

CASES = [
    ("2025年失业保险参保人数是多少？", "2.49亿人"),
    ("社保基金管理的四防指什么？", "人防、制防、技防、群防"),
    ("2025年三项社会保险基金总收入是多少？", "9.1万亿元"),
    ("国际劳工局统计了多少个国家和地区？", "213个国家和地区"),
    ("社会保障公共服务秉持什么理念？", "记录一生、保障一生、服务一生"),
]


@pytest.mark.parametrize(("question", "evidence"), CASES)
def test_top_passage_covers_the_evidence_and_citations_check_out(client, question, evidence):
    r = client.post("/ask", json={"question": question})
    assert r.status_code == 200
    body = r.json()
    assert body["answerable"] is True and evidence in squash(body["answer"]["text"])
    top = body["passages"][0]
    assert evidence in squash(top["text"])
    doc = client.get(f"/documents/{top['doc_id']}").json()
    # a citation is checked by slicing the original document text
    assert squash(doc["text"][top["start"] : top["end"]]) == squash(top["text"])
    a = body["answer"]
    assert squash(doc["text"][a["start"] : a["end"]]) == squash(a["text"])
    for h in top["highlights"]:
        assert top["start"] <= h["start"] < h["end"] <= top["end"]
        assert squash(doc["text"][h["start"] : h["end"]]) == squash(top["text"][h["text_start"] : h["text_end"]])
    assert set(body["timings_ms"]) == {"embed", "dense", "bm25", "rerank", "answer", "total"}
    assert body["index"]["passages"] == len(doc["passage_spans"])


def test_every_answer_is_exactly_what_the_schema_documents(client):
    """/ask writes its JSON by hand (api/routes/qa.py), so the schema in /docs is checked here
    against every labelled question's answer, answered or refused: no field missing, none extra,
    every value of the documented type, nothing changed by the round trip."""
    from api.schemas import AskResponse
    from eval.dataset import DEFAULT_DATASET, load_jsonl

    for q in load_jsonl(DEFAULT_DATASET):
        r = client.post("/ask", json={"question": q.question, "top_k": 3})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        body = r.json()
        assert AskResponse.model_validate(body).model_dump(mode="json") == body, q.question


@pytest.mark.parametrize("question", ["住房公积金怎么提取？", "明天北京会下雨吗？"])
def test_unanswerable(client, question):
    body = client.post("/ask", json={"question": question, "top_k": 3}).json()
    assert body["answerable"] is False and body["answer"] is None
    assert body["reason"] and len(body["passages"]) == 3


def test_search_is_the_same_retrieval(client):
    post = client.post("/ask", json={"question": "失业保险金提高到多少", "top_k": 4}).json()
    get = client.get("/search", params={"q": "失业保险金提高到多少", "top_k": 4}).json()
    assert [p["id"] for p in post["passages"]] == [p["id"] for p in get["passages"]]
    assert post["answer"] == get["answer"]


def test_passages_documents_health_docs(client):
    p = client.get("/passages/article-p022").json()
    assert p["id"] == "article-p022" and "10.76亿人" in p["text"]
    docs = client.get("/documents").json()
    assert [d["doc_id"] for d in docs] == ["article"] and docs[0]["author"] == "王晓萍"
    doc = client.get("/documents/article").json()
    assert len(doc["sections"]) == 3 and doc["text"].startswith("\n\n# 深入学习")
    health = client.get("/health").json()
    assert health["status"] == "ready" and health["model"].startswith("multilingual-e5-small")
    assert client.get("/docs").status_code == 200
    assert "/ask" in client.get("/openapi.json").json()["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "中文文档问答" in page.text


BAD = [
    ({"question": ""}, 422, "question"),
    ({"question": "   \u3000 "}, 422, "empty"),
    ({"question": "长" * 501}, 422, "500"),
    ({"question": "社保", "top_k": 0}, 422, "top_k"),
    ({"question": "社保", "top_k": 51}, 422, "top_k"),
    ({"question": "社保", "top_k": "5"}, 422, "top_k"),
    ({"question": 123}, 422, "question"),
    ({"top_k": 5}, 422, "question"),
    ({"question": "社保", "colour": "red"}, 422, "colour"),
    ({"question": "社保", "doc_id": "nope"}, 404, "nope"),
    ({"question": "社保", "doc_id": ["article", "nope"]}, 404, "'nope'"),
    ({"question": "社保", "doc_id": []}, 422, "doc_id"),
    ({"question": "社保", "doc_id": ["article"] * 101}, 422, "doc_id"),
    ({"question": "社保", "doc_id": [""]}, 422, "doc_id"),
    ({"question": "社保", "doc_id": [3]}, 422, "doc_id"),
    ([], 422, "body"),
]


@pytest.mark.parametrize(("body", "status", "word"), BAD)
def test_bad_input_gets_a_clear_4xx(client, body, status, word):
    r = client.post("/ask", json=body)
    assert r.status_code == status
    assert word in r.json()["detail"]


def test_the_document_filter_takes_a_list_in_both_forms(client):
    one = client.post("/ask", json={"question": "四防是什么？", "doc_id": "article"}).json()
    listed = client.post("/ask", json={"question": "四防是什么？", "doc_id": ["article", "article"]}).json()
    searched = client.get("/search", params=[("q", "四防是什么？"), ("doc_id", "article"), ("doc_id", "article")]).json()
    assert [p["id"] for p in one["passages"]] == [p["id"] for p in listed["passages"]] == [p["id"] for p in searched["passages"]]
    r = client.get("/search", params=[("q", "四防是什么？"), ("doc_id", "article"), ("doc_id", "nope")])
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]
    r = client.get("/search", params=[("q", "四防是什么？"), ("doc_id", "")])
    assert r.status_code == 422 and "doc_id" in r.json()["detail"]


def test_malformed_json_oversized_body_and_unknown_ids(client):
    r = client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]
    r = client.post("/ask", content=json.dumps({"question": "社保" * 10000}), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/passages/article-p999").status_code == 404
    assert client.get("/documents/missing").status_code == 404
    assert client.get("/search", params={"q": ""}).status_code == 422
    assert client.get("/search", params={"q": "社保", "top_k": "x"}).status_code == 422


def test_concurrent_requests_match_sequential(live_server):
    questions = [q for q, _ in CASES] + ["住房公积金怎么提取？", "社保卡能办哪些事？", "企业年金要怎么改进？"]
    work = [questions[i % len(questions)] for i in range(32)]

    def ask(q):
        with httpx.Client(base_url=live_server, timeout=60) as c:
            r = c.post("/ask", json={"question": q, "top_k": 5})
            r.raise_for_status()
            body = r.json()
            return [p["id"] for p in body["passages"]], body["answer"], body["answerable"]

    sequential = {q: ask(q) for q in questions}
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(ask, work))
    assert all(result == sequential[q] for q, result in zip(work, results))
