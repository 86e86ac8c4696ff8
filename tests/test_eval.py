"""Metrics by hand, the labelled set's integrity, and the quality floors on the real model."""
from __future__ import annotations

import json
import re
import math
from collections import Counter

import pytest

from corpus.text import squash
from eval import metrics
from eval.dataset import DEFAULT_DATASET, Squashed, load_jsonl

from .conftest import ARTICLE, SHARED_DATA


def test_relevance_rule():
    assert metrics.is_relevant((0, 100), (40, 60))  # holds all of it
    assert metrics.is_relevant((0, 50), (40, 60))  # half of the evidence
    assert not metrics.is_relevant((0, 49), (40, 60))
    assert metrics.is_relevant((0, 100), (50, 400))  # evidence longer than the passage: half the passage
    assert not metrics.is_relevant((0, 100), (60, 400))
    assert not metrics.is_relevant((0, 10), (10, 20))


def test_ranking_metrics_by_hand():
    ranked, relevant = ["a", "b", "c", "d"], {"c", "x"}
    assert metrics.recall_at(ranked, relevant, 2) == 0.0
    assert metrics.recall_at(ranked, relevant, 3) == 1.0
    assert metrics.mrr_at(ranked, relevant) == pytest.approx(1 / 3)
    # DCG = 1/log2(4) = 0.5; ideal for two relevant = 1 + 1/log2(3)
    assert metrics.ndcg_at(ranked, relevant) == pytest.approx(0.5 / (1 + 1 / math.log2(3)))
    m = metrics.retrieval_metrics([["a", "b"], ["b", "a"]], [{"a"}, {"a"}])
    assert m["recall@1"] == 0.5 and m["recall@3"] == 1.0 and m["mrr@10"] == 0.75


def test_no_answer_metrics_by_hand():
    refused = [True, True, False, False, True]
    answerable = [False, True, True, False, False]
    m = metrics.no_answer_metrics(refused, answerable)
    assert m == {"precision": round(2 / 3, 4), "recall": round(2 / 3, 4), "false_refusal_rate": 0.5}


def test_percentile_and_threshold():
    assert metrics.percentile([1, 2, 3, 4], 50) == 2.5
    assert metrics.percentile([5], 95) == 5
    assert metrics.best_threshold([0.9, 0.8, 0.85], [0.2, 0.3]) == pytest.approx(0.55)


def test_labelled_set_is_sound():
    questions = load_jsonl(DEFAULT_DATASET)
    assert len({q.id for q in questions}) == len(questions)
    answerable = [q for q in questions if q.answerable]
    assert len(answerable) >= 100 and len(questions) - len(answerable) >= 20
    article = Squashed(ARTICLE.read_text(encoding="utf-8"))
    for q in answerable:
        for evidence in (q.evidence, *q.alt_evidence):
            assert article.find_all(evidence), f"{q.id}: evidence not in the article"
        assert squash(q.answer) in squash(q.evidence), f"{q.id}: the answer must lie inside its evidence"
        assert q.tags, q.id
    tags = Counter(t for q in answerable for t in q.tags)
    assert tags["paraphrase"] * 3 >= len(answerable)
    assert {"number", "list", "definition", "why", "how"} <= set(tags)


def test_labelled_set_covers_every_section(service):
    questions = [q for q in load_jsonl(DEFAULT_DATASET) if q.answerable]
    from eval.runner import Docs, labelled_items, relevant_passages

    items = labelled_items(service, questions)
    docs = Docs(service)
    sections = {p.section.split(" > ")[0] for item in items for pid in relevant_passages(service, docs, item)
                for p in [service.passage(pid)]}
    assert sections == {""} | {s for s in service.document("article").sections}


@pytest.fixture(scope="module")
def article_report(service, real_settings):
    from eval.runner import evaluate, labelled_items

    return evaluate(service, labelled_items(service, load_jsonl(DEFAULT_DATASET)), "questions.jsonl", real_settings)


@pytest.mark.slow
def test_quality_on_the_labelled_set(article_report):
    """Regression floors at what the pipeline reaches now (README); issue #4 asks for more."""
    r = article_report
    pipeline = r["retrievers"]["pipeline"]
    assert pipeline["recall@1"] >= 0.90
    # 0.962 where the README was measured, 0.957 on this session's machine with the same code
    # (153787c): one question of 185 flips with the CPU's float kernels, so the floor sits below both.
    assert pipeline["recall@5"] >= 0.95
    assert pipeline["recall@1"] > max(r["retrievers"][x]["recall@1"] for x in ("bm25", "dense", "hybrid"))
    assert pipeline["answer_accuracy"] >= 0.89  # 0.899 with 189 answerable questions; issue #14 asks 0.92
    assert r["no_answer"]["recall"] >= 0.74  # 0.745 of 47; issue #14 asks 0.85
    assert r["no_answer"]["false_refusal_rate"] <= 0.02  # 0.011


def test_the_short_answer_on_the_labelled_set(article_report):
    """Issue #14: the span beats the whole sentence by far; the document's own questions all answered."""
    pipeline = article_report["retrievers"]["pipeline"]
    assert pipeline["span_f1"] >= 0.51 and pipeline["span_f1"] >= 2 * pipeline["sentence_f1"]  # 0.529, 0.243
    assert pipeline["span_exact_match"] >= 0.27  # 0.275
    # Issue #20: without the reader, only the document's own facts are shown (14, 2 of them scored wrong)
    assert pipeline["shown_short_answers"] == 14 and pipeline["wrong_short_answer_rate"] <= 0.15
    assert article_report["by_type"]["document"]["answer_accuracy"] == 1.0
    assert article_report["outside_passages"] >= 4  # bylines and titles: in no passage, answered from the facts


@pytest.mark.slow
def test_report_shape_and_files(article_report, tmp_path):
    from eval.report import write_report

    r = article_report
    assert r["questions"] == len(load_jsonl(DEFAULT_DATASET)) and r["unanswerable"] >= 20
    for name in ("bm25", "dense", "hybrid", "pipeline"):
        assert set(r["retrievers"][name]) >= {"recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
    assert set(r["no_answer"]) == {"precision", "recall", "false_refusal_rate"}
    assert r["latency_ms"]["p50"] > 0 and "number" in r["by_tag"]
    json.dumps(r, ensure_ascii=False)
    page = write_report(r, tmp_path)
    assert page == tmp_path / "questions.html"
    text = page.read_text(encoding="utf-8")
    assert "<td>pipeline</td>" in text and f"Missed questions ({len(r['misses'])})" in text
    assert text.count("<svg") == 3  # recall@k, by type, by tag: inline, nothing to fetch
    assert "src=" not in text and "<script" not in text and "<link" not in text
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', text))  # the charts' own markers only
    assert write_report(r, tmp_path).read_text(encoding="utf-8") == text  # the same report, the same page
    assert r["misses"][0]["question"] in text
    assert (tmp_path / "questions.png").read_bytes()[:4] == b"\x89PNG"


def test_squad_loader(tmp_path):
    from eval.squad import load_squad

    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"data": [{"title": "猴面包树", "paragraphs": [
        {"id": "P1", "context": "猴面包树原产于热带非洲。果实长约15至20厘米。",
         "qas": [{"id": "Q1", "question": "果实多长？", "answers": [{"text": "15至20厘米", "answer_start": 16}]}]}]}]},
        ensure_ascii=False), encoding="utf-8")
    docs, questions = load_squad(path)
    assert docs[0].text.startswith("# 猴面包树\n\n")
    start, end = questions[0]["span"]
    assert docs[0].text[start:end] == "15至20厘米"


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.skipif(not (SHARED_DATA / "cmrc2018_trial.json").exists(), reason="../shared/data not beside the project")
def test_cmrc_sample_runs(real_settings):
    """A bounded CMRC run: builds a cached index of a slice of the file and scores it."""
    from eval import runner

    data = json.loads((SHARED_DATA / "cmrc2018_trial.json").read_text(encoding="utf-8"))
    data["data"] = data["data"][:12]
    sample = real_settings.index_dir.parent / "cmrc_sample.json"
    sample.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    report = runner.run(real_settings, squad=sample, progress=False, cache=sample.parent / "eval-cache")
    assert report["questions"] >= 40 and report["unanswerable"] == 0
    assert report["retrievers"]["pipeline"]["recall@5"] >= 0.9
    assert report["retrievers"]["pipeline"]["recall@1"] >= 0.8


def test_answer_figures_by_hand():
    from eval.runner import _answer_figures

    rows = [
        {"span_em": 1.0, "span_f1": 1.0, "sentence_f1": 0.4, "top_relevant": True, "top_document": True,
         "shown": True, "wrong_shown": False},
        {"span_em": 0.0, "span_f1": 0.3, "sentence_f1": 0.2, "top_relevant": True, "top_document": True,
         "shown": True, "wrong_shown": True},
        {"span_em": 0.0, "span_f1": 0.2, "sentence_f1": 0.0, "top_relevant": False, "top_document": False,
         "shown": False, "wrong_shown": False},
    ]
    figures = _answer_figures(rows)
    assert figures == {"span_exact_match": 0.3333, "span_f1": 0.5, "sentence_f1": 0.2, "span_f1_top_passage": 0.65,
                       "sentence_f1_top_passage": 0.3, "top_passage_questions": 2, "doc_recall@1": 0.6667,
                       "span_coverage": 0.6667, "wrong_short_answer_rate": 0.5, "shown_short_answers": 2}
