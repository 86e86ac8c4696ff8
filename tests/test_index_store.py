"""Building, saving and loading an index folder, with a deterministic fake encoder."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from corpus.passages import SplitSettings
from index import store
from index.build import build_index
from index.manifest import FORMAT_VERSION
from index.store import IndexStoreError


def _build(tmp_path: Path, encoder, paths=(DEFAULT_CORPUS,), split=SplitSettings()) -> Path:
    target = tmp_path / "index"
    build_index(load_documents(list(paths)), encoder, split, target, progress=False)
    return target


def test_round_trip(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    idx = store.load(target, fake_encoder.model_id, SplitSettings())
    m = idx.manifest
    assert m.counts.documents == 1 and m.counts.passages == len(idx.passages) > 40
    assert (m.model.id, m.model.dim) == ("fake-bigram-64", 64)
    assert m.split == {"max_chars": 250, "overlap_sentences": 1, "min_chars": 40}
    assert m.documents[0].sha256 == load_documents([DEFAULT_CORPUS])[0].sha256
    assert {"faiss-cpu", "bm25s", "jieba", "numpy"} <= set(m.versions)
    assert len(m.build_id) == 32 and m.context_header == "none" and m.dense_kind == "flat"
    assert idx.search.size == len(idx.passages) and m.counts.sentences == sum(len(p.sentences) for p in idx.passages)
    assert [len(v) for v in idx.search.vectors(np.arange(len(idx.passages))).sentences] == [len(p.sentences) for p in idx.passages]
    # passages round-trip exactly and keep Chinese readable on disk
    raw = (target / "passages.jsonl").read_text(encoding="utf-8")
    assert "社会保障" in raw
    first = json.loads(raw.splitlines()[0])
    assert first["id"] == idx.passages[0].id and tuple(map(tuple, first["sentences"])) == idx.passages[0].sentences
    assert tuple(map(tuple, first["offsets"])) == idx.passages[0].offsets
    # the stored vectors are the encoder's
    v = fake_encoder.encode_passages([idx.passages[3].text])[0]
    assert np.allclose(idx.search.vectors(np.array([3])).passages[0], v, atol=1e-6)
    assert idx.search.dense_top(v, 1)[0] == 3


def test_keyword_side_finds_exact_figures(tmp_path, fake_encoder):
    from corpus.tokenize import tokenize

    idx = store.load(_build(tmp_path, fake_encoder), fake_encoder.model_id, SplitSettings())
    rows, scores = idx.search.lexical_top("143元", tokenize("143元"), 5)
    assert "143元" in idx.passages[rows[0]].text and (scores > 0).all() and list(scores) == sorted(scores, reverse=True)
    assert len(idx.search.lexical_top("完全无关的词汇xyz", tokenize("完全无关的词汇xyz"), 5)[0]) == 0


def test_candidate_scores_equal_the_full_bm25_vector(tmp_path, fake_encoder):
    """Scoring only the pooled rows gives bm25s's own numbers, bit for bit."""
    from corpus.tokenize import tokenize

    idx = store.load(_build(tmp_path, fake_encoder), fake_encoder.model_id, SplitSettings())
    rows = np.array([0, 3, 7, 20, 41, 5])
    for q in ("社会保障卡能办哪些事", "2025年失业保险参保人数", "养老 养老 保险"):
        full = idx.search.keyword.scores(tokenize(q))
        assert np.array_equal(idx.search.lexical_scores(q, tokenize(q), rows), full[rows])


def test_model_mismatch_is_refused_with_the_fix(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    with pytest.raises(IndexStoreError, match="built with model 'fake-bigram-64'.*qa build"):
        store.load(target, "another-model", SplitSettings())
    with pytest.raises(IndexStoreError, match="split with .*qa build"):
        store.load(target, fake_encoder.model_id, SplitSettings(max_chars=300))


@pytest.mark.parametrize("victim", ["dense.faiss", "passages.jsonl", "sentences.npy", "bm25/vocab.index.json"])
def test_truncated_or_missing_files_are_detected(tmp_path, fake_encoder, victim):
    target = _build(tmp_path, fake_encoder)
    path = target / victim
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexStoreError, match="truncated or corrupted.*qa build"):
        store.load(target, fake_encoder.model_id, SplitSettings())
    path.unlink()
    with pytest.raises(IndexStoreError, match="missing.*qa build"):
        store.load(target, fake_encoder.model_id, SplitSettings())


def test_missing_index_and_damaged_manifest(tmp_path, fake_encoder):
    with pytest.raises(IndexStoreError, match="no index at .*qa build"):
        store.load(tmp_path / "nothing", "m", SplitSettings())
    target = _build(tmp_path, fake_encoder)
    (target / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="damaged.*qa build"):
        store.load(target, fake_encoder.model_id, SplitSettings())


def _good_manifest(target: Path) -> dict:
    return json.loads((target / "manifest.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("damage", [
    lambda m: [1],
    lambda m: "manifest",
    lambda m: {"format_version": FORMAT_VERSION},
    lambda m: {**m, "files": None},
    lambda m: {k: v for k, v in m.items() if k != "files"},
    lambda m: {**m, "model": {"id": "fake-bigram-64"}},
    lambda m: {**m, "model": {"id": "fake-bigram-64", "dim": "64"}},
    lambda m: {**m, "counts": {**m["counts"], "documents": 7}},
    lambda m: {**m, "documents": [{"doc_id": "article"}]},
    lambda m: {**m, "context_header": "section"},
    lambda m: {**m, "files": {k: v for k, v in m["files"].items() if k != "passages.jsonl"}},
], ids=["list", "string", "only-version", "files-null", "no-files", "model-no-dim", "dim-string",
        "counts-disagree", "document-fields", "unknown-header", "file-unlisted"])
def test_valid_json_but_wrong_manifest_is_called_damaged(tmp_path, fake_encoder, damage):
    """Found by issue #12: such manifests gave `KeyError: 'files'` tracebacks and cryptic 409s."""
    target = _build(tmp_path, fake_encoder)
    (target / "manifest.json").write_text(json.dumps(damage(_good_manifest(target))), encoding="utf-8")
    with pytest.raises(IndexStoreError, match=r"damaged .*; rebuild it with `qa build`"):
        store.load(target, fake_encoder.model_id, SplitSettings())


def test_an_older_format_is_refused_with_the_fix(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    (target / "manifest.json").write_text(json.dumps({**_good_manifest(target), "format_version": 1}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match=f"has format 1, this version reads {FORMAT_VERSION}; rebuild"):
        store.load(target, fake_encoder.model_id, SplitSettings())


def test_a_folder_where_a_file_belongs_is_called_missing(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    (target / "passages.jsonl").unlink()
    (target / "passages.jsonl").mkdir()
    with pytest.raises(IndexStoreError, match="passages.jsonl is missing; rebuild"):
        store.load(target, fake_encoder.model_id, SplitSettings())


def test_hnsw_branch_agrees_with_exact_search():
    """Past HNSW_FROM vectors the dense index is a graph; its top 10 must be nearly the exact top 10."""
    from index.dense import DenseIndex, ef_search

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((3000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    graph, exact = DenseIndex.build(vectors, hnsw_from=1000), DenseIndex.build(vectors)
    assert (graph.kind, exact.kind) == ("hnsw", "flat") and graph.size == 3000 and graph.dim == 32
    overlap = []
    for q in vectors[:50] + 0.1 * rng.standard_normal((50, 32)).astype(np.float32):
        q = q / np.linalg.norm(q)
        overlap.append(len(set(graph.search(q, 10)[1]) & set(exact.search(q, 10)[1])) / 10)
    assert np.mean(overlap) >= 0.95
    assert np.allclose(graph.vectors(np.array([5, 9])), vectors[[5, 9]], atol=1e-6)
    assert ef_search(5) == 64 and ef_search(100) == 200
    # the breadth goes with each search, never onto the index that concurrent questions share
    shared = graph._index.hnsw.efSearch
    assert len(graph.search(vectors[0], 150)[1]) == 150 and graph._index.hnsw.efSearch == shared


def test_hnsw_index_round_trips(tmp_path, fake_encoder):
    target = tmp_path / "index"
    build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), target, progress=False, hnsw_from=10)
    idx = store.load(target, fake_encoder.model_id, SplitSettings())
    assert idx.manifest.dense_kind == "hnsw"
    v = fake_encoder.encode_passages([idx.passages[3].text])[0]
    assert idx.search.dense_top(v, 1)[0] == 3


def test_changed_source_is_detected(tmp_path, fake_encoder):
    doc = tmp_path / "docs" / "a.md"
    doc.parent.mkdir()
    doc.write_text("# 标题\n\n养老金上调2%。\n", encoding="utf-8")
    target = _build(tmp_path, fake_encoder, paths=(doc.parent,))
    doc.write_text("# 标题\n\n养老金上调3%。\n", encoding="utf-8")
    with pytest.raises(IndexStoreError, match="changed since the index was built"):
        store.load(target, fake_encoder.model_id, SplitSettings())
    doc.unlink()  # a source that is gone is fine: the index keeps the text
    assert store.load(target, fake_encoder.model_id, SplitSettings()).documents["a"].text.endswith("2%。\n")


class _Exploding:
    model_id, dim = "fake-bigram-64", 64

    def encode_passages(self, texts, progress=False):
        raise RuntimeError("killed mid-build")


def test_a_failed_build_leaves_the_previous_index(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    before = store.read_manifest(target).build_id, os.readlink(target)
    with pytest.raises(RuntimeError):
        build_index(load_documents([DEFAULT_CORPUS]), _Exploding(), SplitSettings(), target, progress=False)
    assert (store.read_manifest(target).build_id, os.readlink(target)) == before
    store.load(target, fake_encoder.model_id, SplitSettings())


def test_rebuild_swaps_atomically_and_cleans_up(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    first = os.readlink(target)
    (tmp_path / "index.20000101-000000-1.partial").mkdir()  # what a killed build leaves
    build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), target, progress=False)
    assert os.readlink(target) != first
    leftovers = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert leftovers == sorted(["index", first, os.readlink(target)])  # the partial build is gone
    for _ in range(3):
        build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), target, progress=False)
    assert len(store.versions(target)) == store.KEEP_VERSIONS and first not in os.listdir(tmp_path)


def test_a_folder_of_several_documents(tmp_path, fake_encoder):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# 甲文\n\n## 一、总则\n\n养老保险全国统筹。失业保险省级统筹。\n", encoding="utf-8")
    (docs / "sub" / "b.txt").write_text("乙文标题\n\n医疗保障覆盖城乡。大病保险减轻负担。\n", encoding="utf-8")
    (docs / "skip.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    target = _build(tmp_path, fake_encoder, paths=(docs, DEFAULT_CORPUS))
    idx = store.load(target, fake_encoder.model_id, SplitSettings())
    assert set(idx.documents) == {"a", "b", "article"}
    assert idx.documents["a"].title == "甲文" and idx.documents["b"].title == "乙文标题"
    assert idx.manifest.context_header == "title" and idx.header("a") == "甲文"
    a_passages = [p for p in idx.passages if p.doc_id == "a"]
    assert a_passages[0].section == "一、总则"
    for p in idx.passages:
        text = idx.documents[p.doc_id].text
        assert "".join(text[p.start : p.end].split()) == "".join(p.text.split())


def test_a_bad_file_fails_before_the_index_is_touched(tmp_path, fake_encoder):
    target = _build(tmp_path, fake_encoder)
    before = os.readlink(target)
    bad = tmp_path / "bad.md"
    bad.write_bytes("社保".encode("gbk"))
    from corpus.documents import CorpusError

    with pytest.raises(CorpusError, match="bad.md"):
        build_index(load_documents([bad]), fake_encoder, SplitSettings(), target, progress=False)
    assert os.readlink(target) == before
