"""The Milvus backend on Milvus Lite, for real (no mock of pymilvus): parity with FAISS, and each Lite fact handled."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from corpus.passages import SplitSettings
from corpus.tokenize import tokenize
from index import milvus, store
from index.build import build_index
from index.store import IndexStoreError
from qa import updates
from qa.loading import milvus_config
from qa.settings import ROOT, Settings

from .conftest import FakeEncoder, lite_released, milvus_variant

CARE = "# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n"


@pytest.fixture()
def lite(tmp_path):
    """Settings for a fake-encoder index on a Milvus Lite folder of this test's own, released after."""
    settings = milvus_variant(Settings().with_(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                                               documents_dir=tmp_path / "uploads"), tmp_path)
    with lite_released(settings):
        yield settings


def _build(settings: Settings, paths, **kw) -> store.LoadedIndex:
    build_index(load_documents(list(paths)), FakeEncoder(), settings.split, settings.index_dir, progress=False,
                config=milvus_config(settings), **kw)
    return store.load(settings.index_dir, FakeEncoder.model_id, settings.split, config=milvus_config(settings))


def _care(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    (docs / "care.md").write_text(CARE, encoding="utf-8")
    return docs / "care.md"


# ---- the same results ------------------------------------------------------------------------

def test_both_backends_give_the_same_results(service, milvus_service):
    """Real model, real article: the same candidates, scores, order, answers and verdicts."""
    questions = ["2025年失业保险参保人数是多少？", "四防是什么？", "基础养老金最低标准提高到多少？", "社会保障卡能办哪些事？",
                 "一次性工亡补助金是怎么调整的？", "住房公积金怎么提取？", "明天北京会下雨吗？"]
    for q in questions:
        (a, ra), (b, rb) = service.ask_with_rankings(q), milvus_service.ask_with_rankings(q)
        assert ra == rb, q  # each retriever's own ranking too (bm25, dense, hybrid, pipeline)
        assert (a.answerable, a.answer, a.confidence) == (b.answerable, b.answer, b.confidence), q
        for x, y in zip(a.hits, b.hits):
            assert x.scores == pytest.approx(y.scores, abs=2e-4), q
    assert milvus_service.info().passages == service.info().passages


def test_the_index_folder_holds_no_vectors_and_names_its_collections(lite):
    idx = _build(lite, [DEFAULT_CORPUS])
    m = idx.manifest
    assert m.backend == "milvus" and set(m.collections) == {"passages"}
    assert not any((lite.index_dir / name).exists() for name in ("dense.faiss", "sentences.npy", "bm25"))
    client = milvus.connect(milvus_config(lite))
    assert client.get_collection_stats(m.collections["passages"])["row_count"] == m.counts.passages
    stored = idx.search.vectors(np.arange(m.counts.passages))
    assert sum(len(v) for v in stored.sentences) == m.counts.sentences
    assert stored.sentences[3].shape == (len(idx.passages[3].sentences), 64)


def test_a_backend_mismatch_is_refused_with_the_fix(lite, tmp_path, fake_encoder):
    _build(lite, [DEFAULT_CORPUS])
    with pytest.raises(IndexStoreError, match="keeps its vectors in Milvus; set QA_BACKEND=milvus"):
        store.load(lite.index_dir, FakeEncoder.model_id, lite.split)
    build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), tmp_path / "faiss", progress=False)
    with pytest.raises(IndexStoreError, match="built for FAISS but QA_BACKEND=milvus"):
        store.load(tmp_path / "faiss", FakeEncoder.model_id, SplitSettings(), config=milvus_config(lite))


# ---- Milvus Lite facts, each handled --------------------------------------------------------

def test_pymilvus_is_imported_only_for_the_milvus_backend(tmp_path, fake_encoder):
    """`import pymilvus` costs 1.4–2 s and an embedded server ~220 MB: the FAISS path never pays them."""
    build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), tmp_path / "index", progress=False)
    script = textwrap.dedent(f"""
        import sys
        import api.app, eval.runner, qa.cli, qa.loading, qa.service, qa.updates
        from corpus.passages import SplitSettings
        from index import store
        store.load({str(tmp_path / 'index')!r}, "fake-bigram-64", SplitSettings())
        print(sorted(m for m in sys.modules if m.startswith(("pymilvus", "milvus_lite"))))
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_second_process_on_a_lite_folder_is_told_what_to_do(lite):
    """Milvus Lite locks its data folder for one process: the second gets a message with the way out."""
    _build(lite, [DEFAULT_CORPUS])  # this process now holds the folder
    script = textwrap.dedent(f"""
        from index import store
        from index.milvus import MilvusConfig
        from corpus.passages import SplitSettings
        try:
            store.load({str(lite.index_dir)!r}, "fake-bigram-64", SplitSettings(), config=MilvusConfig({lite.milvus_uri!r}))
        except store.IndexStoreError as exc:
            print(exc)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "in use by another process" in run.stdout and "QA_MILVUS_URI=http://" in run.stdout


def test_rows_are_flushed_and_indexed_before_the_version_is_published(lite):
    """Unflushed rows are searched brute force (~30× slower): every row is sealed into the index asked for."""
    idx = _build(lite, [DEFAULT_CORPUS])
    client = milvus.connect(milvus_config(lite))
    for role, name in idx.manifest.collections.items():
        info = client.describe_index(name, "vector")
        assert info["index_type"] == "FLAT" and info["indexed_rows"] == info["total_rows"] > 0, role
        assert info["pending_index_rows"] == 0


def test_collections_come_back_released_after_a_restart_and_are_loaded(lite):
    idx = _build(lite, [DEFAULT_CORPUS])
    names = idx.manifest.collections
    milvus.release(milvus_config(lite))  # the process's Lite server stops, as at exit
    client = milvus.connect(milvus_config(lite))
    assert [client.get_load_state(n)["state"].name for n in names.values()] == ["NotLoad"]
    again = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=milvus_config(lite))
    assert [client.get_load_state(n)["state"].name for n in names.values()] == ["Loaded"]
    q = FakeEncoder().encode_queries(["四防"])[0]
    assert len(again.search.dense_top(q, 5)) == 5


def test_bm25_scores_come_back_negative_from_lite_and_positive_from_us(lite):
    """Milvus Lite negates BM25 distances; the index reports BM25 as BM25: positive, best first."""
    jieba = lite.with_(milvus_lexical="jieba")
    idx = _build(jieba, [DEFAULT_CORPUS])
    client = milvus.connect(milvus_config(jieba))
    raw = client.search(idx.manifest.collections["passages"], data=["基础养老金最低标准"], anns_field="sparse",
                        limit=5, search_params={"metric_type": "BM25"}, output_fields=["row"])[0]
    assert raw and all(h["distance"] < 0 for h in raw)
    rows, scores = idx.search.lexical_top("基础养老金最低标准", tokenize("基础养老金最低标准"), 5)
    assert list(rows) == [h["row"] for h in raw] and (scores > 0).all()
    assert list(scores) == sorted(scores, reverse=True)
    assert "143元" in "".join(idx.passages[r].text for r in rows[:2])


def test_our_sparse_bm25_equals_bm25s(lite, tmp_path, fake_encoder):
    """`lexical=ours`: Milvus's inner product over our BM25 weights is bm25s's score (float32 sums)."""
    idx = _build(lite, [DEFAULT_CORPUS])
    build_index(load_documents([DEFAULT_CORPUS]), fake_encoder, SplitSettings(), tmp_path / "faiss", progress=False)
    local = store.load(tmp_path / "faiss", FakeEncoder.model_id, SplitSettings())
    for q in ("基础养老金最低标准提高到多少", "社会保障卡 社会保障卡", "2025年失业保险参保人数"):
        a_rows, a = idx.search.lexical_top(q, tokenize(q), 10)
        b_rows, b = local.search.lexical_top(q, tokenize(q), 10)
        assert list(a_rows) == list(b_rows) and np.allclose(a, b, rtol=1e-5)
        rows = np.arange(0, 48, 5)
        assert np.allclose(idx.search.lexical_scores(q, tokenize(q), rows),
                           local.search.lexical_scores(q, tokenize(q), rows), rtol=1e-5)


def test_hnsw_with_a_selective_document_filter_still_returns_k_rows(lite, tmp_path):
    """HNSW drops filtered-out nodes from its walk and returns fewer than `limit` unless ef is raised."""
    idx = _build(lite, [DEFAULT_CORPUS, _care(tmp_path)], hnsw_from=10)
    assert idx.manifest.dense_kind == "hnsw"
    client = milvus.connect(milvus_config(lite))
    assert client.describe_index(idx.manifest.collections["passages"], "vector")["index_type"] == "HNSW"
    q = FakeEncoder().encode_queries(["长期护理保险每月补助"])[0]
    article = np.array([i for i, p in enumerate(idx.passages) if p.doc_id == "article"])
    care = [i for i, p in enumerate(idx.passages) if p.doc_id == "care"]
    assert sorted(idx.search.dense_top(q, 30, "care")) == care
    exact = article[np.argsort(-(idx.search.vectors(article).passages @ q), kind="stable")[:30]]
    got = idx.search.dense_top(q, 30, "article")
    assert len(got) == 30 and set(got) == set(exact)


def test_only_index_types_lite_really_builds_are_asked_for():
    """Lite accepts DISKANN and SCANN, reports them built, and searches brute force: we ask for FLAT or HNSW only."""
    from milvus_lite.index.factory import KNOWN_VECTOR_INDEX_TYPES

    asked = {milvus._dense_index(kind)["index_type"] for kind in ("flat", "hnsw")}
    assert asked == {"FLAT", "HNSW"} <= KNOWN_VECTOR_INDEX_TYPES
    assert not {"DISKANN", "SCANN"} & KNOWN_VECTOR_INDEX_TYPES


# ---- updates --------------------------------------------------------------------------------

def test_a_reader_keeps_its_version_while_changes_publish_new_ones(lite, tmp_path):
    """Versioned collections: a loaded version answers whole while newer ones appear; three versions are kept."""
    updates.apply(lite, add=load_documents([DEFAULT_CORPUS]), encoder=FakeEncoder())
    config = milvus_config(lite)
    old = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    q = FakeEncoder().encode_queries(["四防"])[0]
    before = list(old.search.dense_top(q, 10))
    updates.apply(lite, add=load_documents([_care(tmp_path)]), encoder=FakeEncoder())
    new = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert set(new.documents) == {"article", "care"} and set(old.documents) == {"article"}
    assert list(old.search.dense_top(q, 10)) == before  # the old version is whole and unchanged
    assert len(new.search.dense_top(q, 5, "care")) == len([p for p in new.passages if p.doc_id == "care"])
    for text in ("900元", "1000元", "1100元"):
        (tmp_path / "docs" / "care.md").write_text(CARE.replace("800元", text), encoding="utf-8")
        updates.apply(lite, add=load_documents([tmp_path / "docs" / "care.md"]), encoder=FakeEncoder())
    mine = [n for n in milvus.connect(config).list_collections() if n.startswith(config.prefix)]
    assert len(mine) == store.KEEP_VERSIONS  # older versions' collections are dropped with their folders
    assert {n.split("_")[2] for n in mine} == {b[:16] for b in store.kept_build_ids(lite.index_dir)}


def test_kill_9_mid_update_leaves_the_previous_version_and_its_leftovers_are_dropped(lite, tmp_path):
    """`qa add` killed with half its new collection inserted: nothing half-published, the leftover dropped later."""
    updates.apply(lite, add=load_documents([DEFAULT_CORPUS]), encoder=FakeEncoder())
    manifest = store.read_manifest(lite.index_dir)
    milvus.release(milvus_config(lite))  # let the writer process open the Lite folder
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from corpus.documents import load_documents
        from index import milvus
        from qa import updates
        from qa.settings import Settings
        from tests.conftest import FakeEncoder

        milvus.INSERT_BATCH = 10
        insert, batches = milvus._insert, []
        def dying(client, name, rows):
            insert(client, name, rows)
            batches.append(len(rows))
            if len(batches) == 3:  # 30 of the new version's passages are in: die mid-ingest
                os.kill(os.getpid(), signal.SIGKILL)
        milvus._insert = dying
        settings = Settings(index_dir=Path({str(lite.index_dir)!r}), cache_dir=Path({str(lite.cache_dir)!r}),
                            backend="milvus", milvus_uri={lite.milvus_uri!r})
        updates.apply(settings, add=load_documents([Path({str(_care(tmp_path))!r})]), encoder=FakeEncoder())
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr
    assert store.read_manifest(lite.index_dir) == manifest  # the previous version is still the one published
    config = milvus_config(lite)
    index = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert set(index.documents) == {"article"} and len(index.search.dense_top(np.ones(64, np.float32) / 8, 5)) == 5
    names = milvus.connect(config).list_collections()
    assert len(names) == 2  # the published version's, and the dead writer's half-filled one
    updates.apply(lite, add=load_documents([tmp_path / "docs" / "care.md"]), encoder=FakeEncoder())
    names = milvus.connect(config).list_collections()
    kept = {b[:16] for b in store.kept_build_ids(lite.index_dir)}
    assert len(names) == 2 and {n.split("_")[2] for n in names} <= kept  # the leftover is gone
    assert {d.doc_id for d in store.read_manifest(lite.index_dir).documents} == {"article", "care"}
