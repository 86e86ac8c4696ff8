"""Knowledge bases (issue #22): named collections in one server, each with its own documents."""
from __future__ import annotations

import httpx
import pytest

from corpus.documents import load_documents
from qa import updates
from qa.kbs import DEFAULT, KnowledgeBaseError, KnowledgeBaseExists, KnowledgeBases, UnknownKnowledgeBase

from .conftest import BACKENDS, lite_released, milvus_variant, serving, small_server

TOKEN = "kb-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CARE = "# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n"
FUND = "公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n"
LEAVE = "# 员工手册\n\n## 一、休假\n\n员工每年享有带薪年假10天。病假需提供医院证明。\n"


def test_the_store_creates_lists_renames_and_deletes(real_settings, tmp_path):
    kbs = KnowledgeBases(real_settings.with_(kbs_dir=tmp_path / "kbs"))
    assert kbs.names() == [DEFAULT] and kbs.settings(DEFAULT) == kbs.server
    kbs.create("handbook", "员工手册", passage_chars=180)
    with pytest.raises(KnowledgeBaseExists):
        kbs.create("handbook")
    for bad in ("Handbook", "1st", "a-b", "手册", "x" * 33, "", DEFAULT):
        with pytest.raises(KnowledgeBaseError):
            kbs.create(bad)
    with pytest.raises(KnowledgeBaseError, match="passage_chars"):
        kbs.create("tiny", passage_chars=1)
    with pytest.raises(KnowledgeBaseError, match="may set only"):
        kbs.create("odd", reader="trained")
    s = kbs.settings("handbook")
    assert (s.index_dir, s.documents_dir, s.passage_chars) == (tmp_path / "kbs/handbook/index",
                                                               tmp_path / "kbs/handbook/documents", 180)
    assert s.cache_dir == real_settings.cache_dir  # one embedding cache: no text embedded twice
    assert kbs.get("handbook").title == "员工手册" and kbs.size("handbook") == (0, 0)
    kbs.rename("handbook", "hr")
    assert kbs.names() == [DEFAULT, "hr"] and kbs.get("hr").overrides == {"passage_chars": 180}
    kbs.delete("hr")
    assert kbs.names() == [DEFAULT] and not (tmp_path / "kbs" / "hr").exists()
    with pytest.raises(UnknownKnowledgeBase):
        kbs.delete("hr")
    with pytest.raises(KnowledgeBaseError, match="cannot be deleted"):
        kbs.delete(DEFAULT)


@pytest.fixture(params=BACKENDS)
def server(request, real_settings, tmp_path):
    """A server over a small default index, its knowledge bases in a folder of their own, at most one held."""
    with small_server(request.param, real_settings, tmp_path, {"care.md": CARE}, kbs_dir=tmp_path / "kbs",
                      admin_token=TOKEN, kbs_loaded=1, watch_s=0.2) as served:
        yield served


def _upload(client, kb: str, name: str, text: str, headers=AUTH):
    return client.post(f"/kbs/{kb}/documents", files=[("files", (name, text.encode(), "text/markdown"))], headers=headers)


def test_knowledge_bases_over_http(server):
    client, settings = server
    assert [k["name"] for k in client.get("/kbs").json()] == ["default"]
    assert client.post("/kbs", json={"name": "handbook"}).status_code == 403
    r = client.post("/kbs", json={"name": "Hand Book"}, headers=AUTH)
    assert r.status_code == 422 and "name" in r.json()["detail"]
    r = client.post("/kbs", json={"name": "handbook", "title": "员工手册"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["documents"] == 0, r.text
    assert client.post("/kbs", json={"name": "handbook"}, headers=AUTH).status_code == 409
    r = client.post("/kbs/handbook/ask", json={"question": "年假有几天？"})
    assert r.status_code == 409 and "holds no documents yet" in r.json()["detail"]

    assert _upload(client, "handbook", "leave.md", LEAVE, headers={}).status_code == 403  # judged before the body
    r = _upload(client, "handbook", "leave.md", LEAVE)
    assert r.status_code == 200 and r.json()["added"] == ["leave"], r.text
    assert (settings.kbs_dir / "handbook" / "documents").is_dir() and not (settings.documents_dir / "leave.md").exists()
    r = client.post("/kbs", json={"name": "fund"}, headers=AUTH)
    assert _upload(client, "fund", "fund.txt", FUND).json()["added"] == ["fund"]

    # each knowledge base answers from its own documents only, and the default is as it was
    asked = client.post("/kbs/handbook/ask", json={"question": "员工每年有几天带薪年假？"}).json()
    assert asked["answerable"] and "10天" in asked["answer"]["text"]
    assert {p["doc_id"] for p in asked["passages"]} == {"leave"}
    for kb, question, only in (("fund", "住房公积金缴存比例是多少？", {"fund"}), ("default", "员工每年有几天带薪年假？", {"care"})):
        path = "/ask" if kb == "default" else f"/kbs/{kb}/ask"
        assert {p["doc_id"] for p in client.post(path, json={"question": question, "top_k": 10}).json()["passages"]} <= only
    searched = client.get("/kbs/fund/search", params={"q": "缴存比例"}).json()
    assert searched["passages"][0]["doc_id"] == "fund"
    assert [d["doc_id"] for d in client.get("/kbs/handbook/documents").json()] == ["leave"]
    assert [d["doc_id"] for d in client.get("/documents").json()] == ["care"]
    assert client.get("/kbs/fund/documents/leave").status_code == 404  # another knowledge base's document
    passage = asked["passages"][0]["id"]
    assert client.get(f"/kbs/handbook/passages/{passage}").status_code == 200
    assert client.get(f"/kbs/fund/passages/{passage}").status_code == 404
    assert client.get(f"/passages/{passage}").status_code == 404

    # at most one held besides the default (QA_KBS_LOADED=1): the least recently asked went
    listed = {k["name"]: k for k in client.get("/kbs").json()}
    assert (listed["fund"]["loaded"], listed["handbook"]["loaded"], listed["default"]["loaded"]) == (True, False, True)
    assert listed["handbook"]["title"] == "员工手册" and listed["handbook"]["documents"] == 1
    assert client.post("/kbs/handbook/ask", json={"question": "病假需要什么？"}).status_code == 200  # loaded again

    # one question of several: each passage names its knowledge base, the most confident answers
    for question, leader, evidence in (("员工每年有几天带薪年假？", "handbook", "10天"),
                                       ("住房公积金缴存比例是多少？", "fund", "12%"),
                                       ("长期护理保险每月补助多少钱？", "default", "800元")):
        body = client.post("/ask", json={"question": question, "top_k": 6, "kbs": ["default", "handbook", "fund"]}).json()
        assert body["answerable"] and body["answer"]["kb"] == leader and evidence in body["answer"]["text"], body
        assert body["passages"][0]["kb"] == leader and len(body["passages"]) == 3  # one passage in each
        assert {p["kb"] for p in body["passages"]} == {"default", "handbook", "fund"}
        for p in body["passages"]:  # each citation checks out in its own knowledge base
            prefix = "" if p["kb"] == "default" else f"/kbs/{p['kb']}"
            assert client.get(f"{prefix}/passages/{p['id']}").json()["text"] == p["text"]
    assert client.post("/ask", json={"question": "年假？", "kbs": ["handbook"]}).json()["passages"][0]["kb"] == "handbook"
    for body, status in (({"question": "年假？", "kbs": ["nope"]}, 404), ({"question": "年假？", "kbs": []}, 422),
                         ({"question": "年假？", "kbs": ["Bad"]}, 422),
                         ({"question": "年假？", "kbs": ["handbook", "fund"], "doc_id": "care"}, 404)):
        r = client.post("/ask", json=body)
        assert r.status_code == status, (body, r.text)
    r = client.post("/kbs/fund/ask", json={"question": "年假？", "kbs": ["handbook"]})
    assert r.status_code == 422 and "kbs" in r.json()["detail"]  # several are asked on /ask
    within = client.post("/ask", json={"question": "年假？", "kbs": ["handbook", "fund"], "doc_id": ["leave", "x"]})
    assert within.status_code == 404 and "'x'" in within.json()["detail"]
    within = client.post("/ask", json={"question": "年假？", "kbs": ["default", "handbook", "fund"], "doc_id": "leave"}).json()
    assert {(p["kb"], p["doc_id"]) for p in within["passages"]} == {("handbook", "leave")}
    assert client.post("/kbs/fund/ask", json={"question": "缴存比例？"}).json()["passages"][0]["kb"] == "fund"

    for path, status in (("/kbs/nope/ask", 404), ("/kbs/No!/ask", 422)):
        r = client.post(path, json={"question": "年假？"})
        assert r.status_code == status, (path, r.text)
    r = client.delete(f"/kbs/handbook/documents/leave", headers=AUTH)
    assert r.status_code == 409 and "empty" in r.json()["detail"]  # the last document: delete the knowledge base
    assert client.delete("/kbs/handbook").status_code == 403
    assert client.delete("/kbs/handbook", headers=AUTH).status_code == 204
    assert client.post("/kbs/handbook/ask", json={"question": "年假？"}).status_code == 404
    assert not (settings.kbs_dir / "handbook").exists()
    assert client.delete("/kbs/default", headers=AUTH).status_code == 422
    assert [k["name"] for k in client.get("/kbs").json()] == ["default", "fund"]


def test_the_command_line_manages_and_asks_knowledge_bases(real_settings, tmp_path, monkeypatch, capsys):
    import json

    from qa.cli import main

    (tmp_path / "leave.md").write_text(LEAVE, encoding="utf-8")
    for name, value in (("QA_INDEX_DIR", real_settings.index_dir), ("QA_KBS_DIR", tmp_path / "kbs"),
                        ("QA_CACHE_DIR", real_settings.cache_dir), ("QA_PORT", "9")):  # no server there
        monkeypatch.setenv(name, str(value))
    assert main(["kb", "create", "handbook", "--title", "员工手册", "--passage-chars", "180"]) == 0
    assert "created knowledge base handbook (员工手册)" in capsys.readouterr().out
    assert main(["kb", "create", "handbook"]) == 2
    assert "exists already" in capsys.readouterr().err
    assert main(["--kb", "handbook", "add", str(tmp_path / "leave.md"), "--quiet"]) == 0
    assert "added leave" in capsys.readouterr().out
    assert main(["--kb", "handbook", "ask", "员工每年有几天带薪年假？", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {p["doc_id"] for p in body["passages"]} == {"leave"} and "10天" in body["answer"]["text"]
    assert main(["ask", "员工每年有几天带薪年假？", "--json"]) == 0  # the default knowledge base: the article
    assert {p["doc_id"] for p in json.loads(capsys.readouterr().out)["passages"]} == {"article"}
    assert main(["kb", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith("default") and "1 documents" in listed[0]
    assert listed[1].startswith("handbook") and "员工手册" in listed[1] and "passages ≤ 180 chars" in listed[1]
    assert main(["--kb", "nope", "ask", "年假？"]) == 2
    assert "no knowledge base named 'nope'" in capsys.readouterr().err
    assert main(["--kb", "Bad Name", "info"]) == 2
    assert "lowercase letter" in capsys.readouterr().err
    assert main(["kb", "delete", "handbook"]) == 0
    assert "deleted knowledge base handbook" in capsys.readouterr().out
    assert main(["kb", "list"]) == 0 and "handbook" not in capsys.readouterr().out


def test_the_merge_keeps_each_order_and_compares_only_blends():
    from hypothesis import given, strategies as st

    from qa.federation import merge
    from qa.types import Hit, Result

    def hit(kb, i, blend):
        return Hit(f"{kb}-p{i}", kb, "", "", "", 0, 1, 100.0 - blend, {"blend": blend})  # score: another scale

    @given(st.dictionaries(st.sampled_from(["default", "a", "b"]),
                           st.lists(st.floats(-1, 1, allow_nan=False), max_size=6), min_size=1),
           st.integers(1, 12))
    def check(blends, top_k):
        results = {kb: Result("q", bool(bs), "", None, tuple(hit(kb, i, b) for i, b in enumerate(bs)),
                              confidence=bs[0] if bs else 0.0) for kb, bs in blends.items()}
        done = merge(results, top_k)
        assert len(done.result.hits) == len(done.kbs) == min(top_k, sum(map(len, blends.values())))
        for kb in blends:  # each knowledge base's passages in its own order
            mine = [h.passage_id for h, k in zip(done.result.hits, done.kbs) if k == kb]
            assert mine == [f"{kb}-p{i}" for i in range(len(mine))]
        if done.kbs:
            heads = {kb: bs[0] for kb, bs in blends.items() if bs}
            assert blends[done.kbs[0]][0] == max(heads.values()) and done.answer_kb == done.kbs[0]

    check()


def test_a_labelled_set_is_evaluated_over_several_knowledge_bases(tmp_path):
    """`qa eval --kbs`: the questions go to every knowledge base, the merged answer is judged, and
    a set written for one document (no `doc`) is about the first knowledge base's."""
    from eval.dataset import Question
    from eval.runner import evaluate, labelled_items
    from index.build import build_index
    from index.store import load
    from qa.federation import Federation
    from qa.service import QAService
    from qa.settings import Settings

    from .conftest import FakeEncoder

    encoder, services = FakeEncoder(), {}
    for kb, name, text in (("default", "care.md", CARE), ("handbook", "leave.md", LEAVE)):
        (tmp_path / kb).mkdir()
        (tmp_path / kb / name).write_text(text, encoding="utf-8")
        settings = Settings().with_(index_dir=tmp_path / f"{kb}-index")
        build_index(load_documents([tmp_path / kb]), encoder, settings.split, settings.index_dir, progress=False)
        index = load(settings.index_dir, encoder.model_id, settings.split)
        services[kb] = next(iter(services.values())).successor(index, settings, None) if services else \
            QAService(index, encoder, settings)
    both = Federation(services)
    assert both.first_document == "care" and both.info().documents == 2
    questions = [Question("q1", "长期护理保险每月补助多少钱？", True, "800元", "长期护理保险每月补助800元"),
                 Question("q2", "员工每年享有几天带薪年假？", True, "10天", "员工每年享有带薪年假10天", doc="leave")]
    items = labelled_items(both, questions, both.first_document)
    assert [i.doc_id for i in items] == ["care", "leave"]
    report = evaluate(both, items, "two", Settings())
    assert report["retrievers"]["pipeline"]["recall@1"] == 1.0 and report["index"]["passages"] == 2
    twice = {"default": services["default"], "again": services["default"]}
    with pytest.raises(ValueError, match="'care' is in knowledge bases default and again"):
        Federation(twice)


@pytest.mark.slow
@pytest.mark.data
def test_the_bench_measures_knowledge_bases_in_one_server(real_settings, monkeypatch):
    from pathlib import Path

    from eval import bench_kbs

    monkeypatch.setattr(bench_kbs, "COUNTS", (1, 2))
    regs = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "regs"
    r = bench_kbs.bench_kbs(real_settings, regs)
    assert r["knowledge_bases"] == 2 and {"rss_mb_1_loaded", "rss_mb_2_loaded"} <= set(r)
    assert r["first_question_ms_p50"] > 0 and r["loaded_question_ms_p50"] > 0
    rows = bench_kbs.kbs_rows(r)
    assert "1: " in rows[0][1] and "2: " in rows[0][1]


_SUBSETS = [frozenset(c) for n in (1, 2, 3) for c in __import__("itertools").combinations(("default", "a", "b"), n)]
_KEY = {scope: "key-" + "-".join(sorted(scope)) for scope in _SUBSETS}
_QUESTIONS = ["员工每年有几天带薪年假？", "住房公积金缴存比例是多少？", "长期护理保险每月补助多少钱？"]


@pytest.fixture(scope="module", params=BACKENDS)
def scoped(request, real_settings, tmp_path_factory):
    """The default (care) and knowledge bases a (leave) and b (fund), a key for every set of them,
    and one key that reads everything."""
    from api.app import create_app
    from qa.loading import update_encoder

    tmp = tmp_path_factory.mktemp("scoped-" + request.param)
    settings = real_settings.with_(index_dir=tmp / "index", cache_dir=tmp / "cache", documents_dir=tmp / "uploads",
                                   kbs_dir=tmp / "kbs", api_keys=("all-key",),
                                   kb_keys=tuple(f"{key}={'+'.join(sorted(scope))}" for scope, key in _KEY.items()))
    if request.param == "milvus":
        settings = milvus_variant(settings, tmp)
    encoder, store = update_encoder(settings), KnowledgeBases(settings)
    with lite_released(settings):
        for kb, name, text in (("default", "care.md", CARE), ("a", "leave.md", LEAVE), ("b", "fund.txt", FUND)):
            (tmp / kb).mkdir()
            (tmp / kb / name).write_text(text, encoding="utf-8")
            if kb != DEFAULT:
                store.create(kb)
            updates.build(load_documents([tmp / kb]), store.settings(kb), encoder, progress=False)
        with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as client:
            yield client


def test_a_key_never_reaches_outside_its_knowledge_bases(scoped):
    """Issue #22: hits, answers, documents, passages, the list and the errors of a knowledge base
    a key may not read are, to that key, those of one that does not exist."""
    from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

    client = scoped
    everything = frozenset({"default", "a", "b"})
    doc_of = {"default": "care", "a": "leave", "b": "fund"}
    pid = {kb: client.get(("" if kb == "default" else f"/kbs/{kb}") + "/documents/" + doc_of[kb],
                          headers={"x-api-key": "all-key"}).json()["passage_spans"][0]["id"] for kb in everything}
    assert client.post("/ask", json={"question": "年假？"}).status_code == 401  # no key
    assert client.post("/kbs/nope/ask", json={"question": "年假？"}).status_code == 401  # nothing learnt without one

    @hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(scope=st.sampled_from([*_SUBSETS, None]), asked=st.lists(st.sampled_from(["default", "a", "b", "zz"]),
                                                                    min_size=1, max_size=3),
           question=st.sampled_from(_QUESTIONS), how=st.sampled_from(["path", "kbs", "passage", "documents"]))
    def check(scope, asked, question, how):
        headers = {"x-api-key": _KEY[scope] if scope else "all-key"}
        readable = everything if scope is None else scope
        kb = asked[0]
        prefix = "" if kb == "default" else f"/kbs/{kb}"
        if how == "path":
            r = client.post(prefix + "/ask", json={"question": question, "top_k": 5}, headers=headers)
        elif how == "kbs":
            r = client.post("/ask", json={"question": question, "top_k": 5, "kbs": asked}, headers=headers)
        elif how == "passage":
            r = client.get(f"{prefix}/passages/{pid.get(kb, 'x-p000')}", headers=headers)
        else:
            r = client.get(f"{prefix}/documents", headers=headers)
        wanted = set(asked) if how == "kbs" else {kb}
        if wanted <= readable:
            assert r.status_code == 200, r.text
            body = r.json()
            if how in ("path", "kbs"):
                assert {p["kb"] for p in body["passages"]} <= wanted and body["answer"] is None or body["answer"]["kb"] in wanted
                assert {p["doc_id"] for p in body["passages"]} <= {doc_of[k] for k in wanted}
        else:
            refused = sorted(wanted - readable)
            assert r.status_code == 404, r.text
            assert r.json()["detail"] == f"no knowledge base named {refused[0]!r}" or \
                r.json()["detail"] in {f"no knowledge base named {k!r}" for k in refused}
        listed = {k["name"] for k in client.get("/kbs", headers=headers).json()}
        assert listed == readable

    check()


def test_a_server_lets_go_of_knowledge_bases_past_its_memory_budget(real_settings, tmp_path):
    """QA_KBS_MEMORY_MB: the least recently asked go once their indexes add up to more; the one
    just asked stays, whatever its size."""
    from types import SimpleNamespace

    from api.kbs import KnowledgeBasePool
    from qa.loading import load_service, update_encoder

    settings = real_settings.with_(kbs_dir=tmp_path / "kbs", kbs_loaded=8, cache_dir=tmp_path / "cache")
    store, encoder = KnowledgeBases(settings), update_encoder(settings)
    for kb, text in (("a", LEAVE), ("b", FUND), ("c", CARE)):
        (tmp_path / kb).mkdir()
        (tmp_path / kb / f"{kb}.md").write_text(text, encoding="utf-8")
        store.create(kb)
        updates.build(load_documents([tmp_path / kb]), store.settings(kb), encoder, progress=False)
    sizes = {kb: store.footprint_mb(kb) for kb in "abc"}
    assert all(0 < mb < 0.1 for mb in sizes.values())  # a few KB each: vectors, sentences, BM25, texts
    metrics = SimpleNamespace(reloads=SimpleNamespace(inc=lambda: None), reload_failures=SimpleNamespace(inc=lambda: None))
    default = SimpleNamespace(service=load_service(real_settings))
    budget = sizes["a"] + sizes["b"] + sizes["c"] / 2  # two fit, three do not
    pool = KnowledgeBasePool(settings.with_(kbs_memory_mb=budget), default, metrics)
    for kb in "abc":
        pool.service(kb)
    assert pool.loaded() == ["b", "c"] and sum(sizes[k] for k in pool.loaded()) <= budget
    pool.service("a")  # asked again: loaded again, and the least recently asked goes
    assert pool.loaded() == ["c", "a"]
    tiny = KnowledgeBasePool(settings.with_(kbs_memory_mb=min(sizes.values()) / 10), default, metrics)
    tiny.service("a")
    assert tiny.loaded() == ["a"]  # over the budget alone, and still served
    roomy = KnowledgeBasePool(settings.with_(kbs_memory_mb=100), default, metrics)
    for kb in "abc":
        roomy.service(kb)
    assert roomy.loaded() == ["a", "b", "c"]
