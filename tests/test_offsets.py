"""Citations stay exact on any text: the offset map that cleaning records, tested on arbitrary Unicode."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from corpus.documents import CorpusError, load_documents
from corpus.offsets import original_span, runs_of, to_original
from corpus.passages import SplitSettings
from corpus.text import squash
from corpus.tokenize import tokenize
from corpus.passages import plan
from index.build import build_index
from index.store import load
from qa.answer import answer_extent, highlights
from qa.service import QAService
from qa.settings import Settings

from .conftest import SHARED_DATA, FakeEncoder

# What real documents hold and cleaning must survive (issues #9 and #12).
AWKWARD = [
    "\u00a0", "\u3000", "\u200b", "\ufeff", "\u2028", "\u2029", "\r", "\r\n", "\t", "\x0b", "\x1c", "\u0301", "\u0308",
    "🎉", "👩‍👩‍👧", "𠀀", "𡒄", "１２３", "10\n.76", "**", "__", "*", "_", "。", "！", "？", "“", "”", "\n\n", "\n",
    " ", "# ", "## ", "一、", "（一）", "Social Security\nApp", "Hello\tworld", "社会保障", "2025年", "10.76亿人", "15%",
]
texts = st.lists(st.one_of(st.sampled_from(AWKWARD), st.text(min_size=1, max_size=6)), max_size=60).map("".join)


def test_runs_compress_and_map_back():
    offsets = [3, 4, 5, 9, 10, 12]
    runs = runs_of(offsets)
    assert runs == ((0, 3), (3, 9), (5, 12))
    assert [to_original(runs, i) for i in range(6)] == offsets
    assert original_span(runs, 1, 4) == (4, 10) and original_span(runs, 5, 6) == (12, 13)


def _check_passages(original: str, passages) -> None:
    for p in passages:
        # every character of the passage text sits where the map says, in order
        mapped = [to_original(p.offsets, i) for i in range(len(p.text))]
        assert mapped == sorted(set(mapped)), p.id
        for i, ch in enumerate(p.text):
            source = original[mapped[i]]
            assert source == ch or (ch in " \n" and source.isspace()), (p.id, i, ch, source)
        assert (p.start, p.end) == (mapped[0], mapped[-1] + 1)
        assert squash(original[p.start : p.end]) == squash(p.text), p.id
        terms = set(tokenize(p.text[:12]))
        for k in range(len(p.sentences)):
            for h in highlights(p, k, terms):
                assert squash(original[h.start : h.end]) == squash(p.text[h.text_start : h.text_end])
                assert original[h.start] == p.text[h.text_start] or p.text[h.text_start].isspace()
            s, e = answer_extent(p, k)
            a, b = p.original_span(s, e)
            assert squash(original[a:b]) == squash(p.text[s:e])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
@example("# 测试\n\n四氟化碳是一种卤代烃。零下198\u00a0°C时，四氟化碳具有单斜的结构。它的沸点很低。\n")
@example("# 社保卡挂失指南\n\n一、线上办理\n\n登录 Social Security\nApp 即可办理社保卡挂失。")
@example("参保人数达到10\n.76亿人。Hello\tworld 是问候。\r\n\r\n**重点**在*这*里_。")
def test_any_text_builds_or_is_refused_by_name_and_every_citation_slices_the_original(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "doc.md"
        path.write_bytes(text.encode("utf-8"))
        try:
            docs = load_documents([path])
            _, passages = plan(docs, SplitSettings())
        except CorpusError as exc:
            assert str(path) in str(exc)
            return
        _check_passages(docs[0].text, passages)


@pytest.mark.parametrize(("text", "question"), [
    ("# 测试\n\n四氟化碳是一种卤代烃。零下198\u00a0°C时，四氟化碳具有单斜的结构。它的沸点很低。\n", "四氟化碳在零下198度是什么结构？"),
    ("# 社保卡挂失指南\n\n一、线上办理\n\n登录 Social Security\nApp 即可办理社保卡挂失。", "社保卡怎么挂失？"),
    ("# 数字\n\n全国参保人数达到10\n.76亿人。Hello\tworld 是一句问候。\n", "参保人数达到多少？"),
])
def test_questions_over_awkward_text_answer_with_exact_citations(tmp_path, text, question):
    """The two crashes of issues #9 and #12: the build succeeded, then every question hitting the passage failed."""
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    encoder, settings = FakeEncoder(), Settings().with_(index_dir=tmp_path / "index")
    build_index(load_documents([path]), encoder, settings.split, settings.index_dir, progress=False)
    service = QAService(load(settings.index_dir, encoder.model_id, settings.split), encoder,
                        settings.with_(no_answer_threshold=-1.0))
    result = service.ask(question)
    original = service.document("doc").text
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(settings, service=service)) as client:  # issue #12: this was a text/plain 500
        for r in (client.post("/ask", json={"question": question}), client.get("/search", params={"q": question})):
            assert r.status_code == 200 and r.json()["answer"]["text"] == result.answer.text
    a = result.answer
    assert a is not None and squash(original[a.start : a.end]) == squash(a.text)
    for hit in result.hits:
        assert squash(original[hit.start : hit.end]) == squash(hit.text)
        for h in hit.highlights:
            assert squash(original[h.start : h.end]) == squash(hit.text[h.text_start : h.text_end])


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("name", ["cmrc2018_trial.json", "drcd_test.json"])
def test_every_context_of_the_public_sets_builds(tmp_path, name):
    from eval.squad import load_squad

    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not beside the project")
    documents, _ = load_squad(path)
    parsed, passages = plan(documents, SplitSettings())
    texts = {d.doc_id: d.text for d in documents}
    for doc_id in texts:
        _check_passages(texts[doc_id], [p for p in passages if p.doc_id == doc_id])
    manifest = build_index(documents, FakeEncoder(), SplitSettings(), tmp_path / "index", progress=False)
    assert manifest.counts.documents == len(documents) and manifest.counts.passages == len(passages)
    assert json.loads((tmp_path / "index" / "manifest.json").read_text(encoding="utf-8"))["counts"]["passages"] == len(passages)
