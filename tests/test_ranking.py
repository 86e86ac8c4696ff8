"""The query path's units with the deterministic fake encoder: fusion, final order, filters, answers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from index.build import build_index
from index.store import load
from qa import fusion, ranking
from qa.answer import answer_extent, term_spans, verdict
from qa.service import QAService
from qa.settings import Settings

from hypothesis import given, settings as hsettings, strategies as st

from .conftest import BACKENDS, FakeEncoder, lite_released, milvus_variant


def test_ranks_break_ties_by_position():
    assert fusion.ranks(np.array([0.2, 0.9, 0.2, 0.5])).tolist() == [3, 1, 4, 2]


def test_rrf_by_hand():
    fused = fusion.rrf([np.array([1, 2]), np.array([2, 1])], k=60)
    assert fused.tolist() == pytest.approx([1 / 61 + 1 / 62, 1 / 62 + 1 / 61])
    assert fusion.rrf([np.array([1, 3])]).tolist() == pytest.approx([1 / 61, 1 / 63])  # k defaults to 60


def test_share_of_wanted_bigrams():
    assert fusion.share(frozenset({"社保", "保卡"}), frozenset({"社保", "卡号"})) == 0.5
    assert fusion.share(frozenset(), frozenset({"社保"})) == 0.0


def test_blend_weighs_the_best_sentence_twice():
    blend = ranking.blend_scores(np.array([0.9, 0.6], np.float32), np.array([0.6, 0.9], np.float32))
    assert blend.tolist() == pytest.approx([(0.9 + 1.2) / 3, (0.6 + 1.8) / 3])
    assert ranking.top(np.array([7, 3, 5]), np.array([0.5, 0.9, 0.9], np.float32), 2).tolist() == [1, 2]


def test_features_by_hand():
    x = ranking.features(dense=np.array([0.8, 0.6], np.float32), sentence=np.array([0.9, 0.6], np.float32),
                         sentence_2=np.array([0.5, 0.6], np.float32), bm25=np.array([4.0, 2.0], np.float32),
                         dense_rank=np.array([1, 2], np.float32), bm25_rank=np.array([1, 2], np.float32),
                         bigrams=np.array([0.5, 0.25]), terms=np.array([1.0, 0.5]), title=np.array([0.0, 0.5]),
                         first=np.array([1.0, 0.0]))
    col = dict(zip(ranking.FEATURES, x.T))
    assert x.shape == (2, len(ranking.FEATURES))
    assert col["blend"].tolist() == pytest.approx([(0.8 + 1.8) / 3, 0.6])  # the fixed order is the first feature
    assert col["bm25"].tolist() == [1.0, 0.5]  # over the best candidate's
    assert col["dense_z"].tolist() == pytest.approx([1.0, -1.0])  # two values: ±1 standard deviation
    assert col["dense_rank"].tolist() == [1.0, 0.5] and col["first"].tolist() == [1.0, 0.0]
    one = np.ones(2, np.float32)
    flat = ranking.features(one, one, one, 0 * one, one, one, one, one, one, one)
    assert not np.isnan(flat).any()  # equal scores and no lexical match: zeros, not a division by zero
    assert ranking.features(*[np.zeros(0, np.float32)] * 10).shape == (0, len(ranking.FEATURES))


def test_a_learned_score_is_the_sum_of_its_parts():
    ranker = ranking.Ranker.load()
    x = np.random.default_rng(0).random((5, len(ranking.FEATURES))).astype(np.float32)
    for row, score in zip(x, ranker.scores(x)):
        assert sum(ranker.parts(row).values()) == pytest.approx(float(score), abs=1e-3)


def test_weights_for_other_features_are_refused(tmp_path):
    shipped = json.loads(ranking.WEIGHTS.read_text(encoding="utf-8"))
    (tmp_path / "w.json").write_text(json.dumps({**shipped, "features": ["dense", "sentence"]}), encoding="utf-8")
    with pytest.raises(ranking.RankerError, match="retrain"):
        ranking.Ranker.load(tmp_path / "w.json")
    with pytest.raises(ranking.RankerError, match="cannot read"):
        ranking.Ranker.load(tmp_path / "missing.json")


def test_over_several_documents_every_hit_shows_the_parts_of_its_learned_score(several):
    result = several.ask("住房公积金缴存比例是多少？", top_k=3)
    assert len({h.doc_id for h in result.hits}) > 1
    for hit in result.hits:
        assert hit.parts and sum(hit.parts.values()) == pytest.approx(hit.score, abs=2e-3)
        assert {"dense", "bm25", "sentence", "blend"} <= set(hit.scores)
    assert result.confidence == result.hits[0].scores["blend"]  # the threshold's scale, whatever the order
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_inside_one_document_the_blend_orders(several):
    result = several.ask("长期护理保险每月补助多少？", top_k=5, doc_id="article")
    assert result.hits and [h.score for h in result.hits] == [h.scores["blend"] for h in result.hits]
    assert not any(h.parts for h in result.hits)


def test_the_blend_order_can_be_chosen(several):
    blend = several.with_ranker("blend")
    result = blend.ask("住房公积金缴存比例是多少？", top_k=3)
    assert [h.score for h in result.hits] == [h.scores["blend"] for h in result.hits]
    assert not result.hits[0].parts


def test_term_spans_merge_and_skip_single_characters():
    assert term_spans("失业保险参保人数，失业保险金", {"失业保险", "保险", "人"}) == [(0, 4), (9, 13)]


def test_verdict_against_the_threshold():
    assert verdict(0.9, True, 0.889) == (True, "answer found (confidence 0.900 ≥ 0.889)")
    refused, reason = verdict(0.88, True, 0.889)
    assert not refused and "0.880 < 0.889" in reason
    assert verdict(0.99, False, 0.889) == (False, "the index holds no passage to search")


@pytest.fixture(scope="module")
def several(tmp_path_factory):
    """A service over three documents (the article and two short ones) with the fake encoder."""
    folder = tmp_path_factory.mktemp("several")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "care.md").write_text("# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n\n"
                                  "## 二、申请\n\n申请人向社区提交评估申请。评估通过后次月发放。\n", encoding="utf-8")
    (docs / "fund.txt").write_text("公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n", encoding="utf-8")
    encoder, settings = FakeEncoder(), Settings().with_(index_dir=folder / "index")
    build_index(load_documents([docs, DEFAULT_CORPUS]), encoder, settings.split, settings.index_dir, progress=False)
    return QAService(load(settings.index_dir, encoder.model_id, settings.split), encoder, settings)


def test_several_documents_are_embedded_under_their_titles(several):
    info = several.info()
    assert (info.documents, info.model, info.dense_kind) == (3, "fake-bigram-64", "flat")
    assert several.index.header("care") == "护理保险办法"


def test_a_document_filter_keeps_to_that_document(several):
    everywhere = several.ask("长期护理保险每月补助多少钱？", top_k=5)
    assert everywhere.hits[0].doc_id == "care"
    only = several.ask("长期护理保险每月补助多少钱？", top_k=5, doc_id="fund")
    assert {h.doc_id for h in only.hits} == {"fund"} and len(only.hits) == 1
    # a document that ranks low overall still gets its passages scored exactly
    article = several.ask("住房公积金缴存比例是多少？", top_k=3, doc_id="article")
    assert len(article.hits) == 3 and {h.doc_id for h in article.hits} == {"article"}


def test_rankings_for_evaluation_are_each_retrievers_own(several):
    result, rankings = several.ask_with_rankings("住房公积金缴存比例是多少？", top_k=3)
    assert set(rankings) == {"bm25", "dense", "hybrid", "pipeline"}
    assert rankings["pipeline"] == [h.passage_id for h in result.hits]
    assert rankings["bm25"][0] == "fund-p000" and all(len(r) <= 3 for r in rankings.values())


def test_an_answer_takes_the_next_sentence_after_a_short_one_or_a_lead_in():
    from corpus.passages import Passage

    text = "待遇如下。长期护理保险每月补助800元，失能老人可以申请上门护理服务。申请人向社区提交评估申请，评估通过后次月发放。"
    cuts = [0, 5, 34, len(text)]
    spans = tuple(zip(cuts, cuts[1:]))
    p = Passage("d-p000", "d", "", text, 0, len(text), spans, ((0, 0),))
    assert answer_extent(p, 0) == (0, 34)  # "待遇如下。" leads in: the items follow
    assert answer_extent(p, 1) == (5, 34)  # a full sentence stands alone
    assert answer_extent(p, 2) == (34, len(text))  # the last sentence has nothing to take


def test_the_api_answer_carries_the_parts_and_the_blend(several):
    from api.schemas import AskResponse
    from qa.render import render_result, result_json

    result = several.ask("住房公积金缴存比例是多少？", top_k=2)
    body = AskResponse.model_validate(result_json(result, several)).model_dump()
    top = body["passages"][0]
    assert top["parts"] == result.hits[0].parts and top["scores"]["blend"] == result.hits[0].scores["blend"]
    assert "learned: " in render_result(result)


def test_best_two_sentences_by_hand():
    best, second = ranking.best_two([np.array([0.2, 0.9, 0.5]), np.array([0.7]), np.array([0.4, 0.4])],
                                    np.array([1, 0, 0]))
    assert best.tolist() == pytest.approx([0.9, 0.7, 0.4]) and second.tolist() == pytest.approx([0.5, 0.7, 0.4])


@pytest.fixture(scope="module", params=BACKENDS)
def several_anywhere(request, tmp_path_factory):
    """The three documents of ``several`` on each backend."""
    from qa.loading import milvus_config

    folder = tmp_path_factory.mktemp("several-" + request.param)
    docs = folder / "docs"
    docs.mkdir()
    (docs / "care.md").write_text("# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n",
                                  encoding="utf-8")
    (docs / "fund.txt").write_text("公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n", encoding="utf-8")
    encoder, settings = FakeEncoder(), Settings().with_(index_dir=folder / "index")
    if request.param == "milvus":
        settings = milvus_variant(settings, folder)
    with lite_released(settings):
        build_index(load_documents([docs, DEFAULT_CORPUS]), encoder, settings.split, settings.index_dir,
                    progress=False, config=milvus_config(settings))
        index = load(settings.index_dir, encoder.model_id, settings.split, config=milvus_config(settings))
        yield QAService(index, encoder, settings)


@hsettings(max_examples=25, deadline=None)
@given(docs=st.lists(st.sampled_from(["article", "care", "fund"]), min_size=1, max_size=4),
       question=st.sampled_from(["长期护理保险每月补助多少钱？", "住房公积金缴存比例是多少？", "社保卡能办哪些事？", "四防是什么？"]),
       top_k=st.integers(1, 8))
def test_a_list_of_documents_keeps_every_hit_inside_it(several_anywhere, docs, question, top_k):
    """Issue #22: the document filter takes a list; a list of one is that document, a list of all is no filter."""
    asked = several_anywhere.ask(question, top_k=top_k, doc_id=docs)
    assert {h.doc_id for h in asked.hits} <= set(docs)
    if asked.answer is not None:
        assert asked.answer.doc_id in set(docs)
    passages = sum(len(several_anywhere.passages_of(d)) for d in set(docs))
    assert len(asked.hits) == min(top_k, passages)  # every document asked can fill the list
    if len(set(docs)) == 1:
        assert asked.hits == several_anywhere.ask(question, top_k=top_k, doc_id=docs[0]).hits
    if set(docs) == {"article", "care", "fund"}:
        assert asked.hits == several_anywhere.ask(question, top_k=top_k).hits


def test_a_bad_document_list_is_named(several):
    from qa.types import NotFound, QuestionError

    with pytest.raises(NotFound, match="no document with id 'nope', 'gone'"):
        several.ask("四防是什么？", doc_id=["article", "nope", "gone"])
    with pytest.raises(QuestionError, match="names no document"):
        several.ask("四防是什么？", doc_id=[])
    with pytest.raises(QuestionError, match="the limit is 100"):
        several.ask("四防是什么？", doc_id=[f"d{i}" for i in range(101)])
