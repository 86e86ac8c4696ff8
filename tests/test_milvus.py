"""The Milvus backend on Milvus Lite, for real (no mock of pymilvus): parity with FAISS, and each Lite fact handled."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from corpus.passages import SplitSettings
from corpus.tokenize import tokenize
from index import milvus, milvus_backend, store
from index.build import build_index
from index.store import IndexStoreError
from qa import updates
from qa.loading import milvus_config
from qa.settings import ROOT, Settings

from .conftest import FakeEncoder, lite_released, milvus_variant

pytestmark = [pytest.mark.slow]

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
                        limit=5, search_params={"metric_type": "BM25"}, output_fields=["key"])[0]
    assert raw and all(h["distance"] < 0 for h in raw)
    rows, scores = idx.search.lexical_top("基础养老金最低标准", tokenize("基础养老金最低标准"), 5)
    assert list(rows) == [h["key"] for h in raw] and (scores > 0).all()
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
    assert sorted(idx.search.dense_top(q, 30, ("care",))) == care
    exact = article[np.argsort(-(idx.search.vectors(article).passages @ q), kind="stable")[:30]]
    got = idx.search.dense_top(q, 30, ("article",))
    assert len(got) == 30 and set(got) == set(exact)


def test_only_index_types_lite_really_builds_are_asked_for():
    """Lite accepts DISKANN and SCANN, reports them built, and searches brute force: we ask for FLAT or HNSW only."""
    from milvus_lite.index.factory import KNOWN_VECTOR_INDEX_TYPES

    asked = {milvus._dense_index(kind)["index_type"] for kind in ("flat", "hnsw")}
    assert asked == {"FLAT", "HNSW"} <= KNOWN_VECTOR_INDEX_TYPES
    assert not {"DISKANN", "SCANN"} & KNOWN_VECTOR_INDEX_TYPES


# ---- updates: versioned rows ------------------------------------------------------------------

FUND = "公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n"


class Written:
    """Rows this process sends to Milvus, counted at the one place each kind is sent (pymilvus itself runs)."""

    def __init__(self, monkeypatch) -> None:
        self.inserted = self.marked = 0
        insert, upsert = milvus._insert, milvus._upsert

        def counting_insert(client, name, rows):
            self.inserted += len(rows)
            insert(client, name, rows)

        def counting_upsert(client, name, rows):
            assert all(set(r) == {"key", "died"} for r in rows)  # a death mark: no vector sent again
            self.marked += len(rows)
            upsert(client, name, rows)

        monkeypatch.setattr(milvus, "_insert", counting_insert)
        monkeypatch.setattr(milvus, "_upsert", counting_upsert)

    def take(self) -> tuple[int, int]:
        out, self.inserted, self.marked = (self.inserted, self.marked), 0, 0
        return out


def _docs(tmp_path) -> dict[str, object]:
    _care(tmp_path)
    (tmp_path / "docs" / "fund.txt").write_text(FUND, encoding="utf-8")
    return {"care": tmp_path / "docs" / "care.md", "fund": tmp_path / "docs" / "fund.txt"}


def _visible(config, index: store.LoadedIndex) -> int:
    """Rows the version's filter lets through, counted by Milvus."""
    return milvus._count(milvus.connect(config), index.manifest.collections["passages"], index.search.rows.visible())


def _whole(config, index: store.LoadedIndex) -> None:
    """The version sees exactly its own passages: each of its documents whole, nothing of another version."""
    assert _visible(config, index) == len(index.passages)
    q = FakeEncoder().encode_queries(["长期护理保险每月补助"])[0]
    for doc_id in index.documents:
        mine = [i for i, p in enumerate(index.passages) if p.doc_id == doc_id]
        assert sorted(index.search.dense_top(q, len(index.passages), (doc_id,))) == mine, doc_id
    assert len(index.search.dense_top(q, len(index.passages))) == len(index.passages)


def _answers(index: store.LoadedIndex) -> tuple:
    q = FakeEncoder().encode_queries(["长期护理保险每月补助"])[0]
    terms = tokenize("长期护理保险每月补助800元")
    rows, scores = index.search.lexical_top("", terms, 10)
    return (list(index.search.dense_top(q, 10)), list(rows), list(scores),
            list(index.search.lexical_scores("", terms, np.arange(len(index.passages)))))


def test_a_change_writes_only_its_documents_rows_and_readers_keep_their_version(lite, tmp_path, monkeypatch):
    """Add, replace, remove one document: only its rows are sent; a reader of the version before sees it whole."""
    docs, config = _docs(tmp_path), milvus_config(lite)
    updates.apply(lite, add=load_documents([DEFAULT_CORPUS, docs["care"]]), encoder=FakeEncoder())
    first = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    name = first.manifest.collections["passages"]
    care = sum(p.doc_id == "care" for p in first.passages)
    before, stored = _answers(first), milvus.row_count(config, name)
    written = Written(monkeypatch)

    updates.apply(lite, add=load_documents([docs["fund"]]), encoder=FakeEncoder())  # add
    added = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    fund = sum(p.doc_id == "fund" for p in added.passages)
    assert written.take() == (fund, 0) and milvus.row_count(config, name) == stored + fund
    assert added.manifest.collections["passages"] == name  # the same collection, a new version of its rows

    docs["care"].write_text(CARE.replace("800元", "900元"), encoding="utf-8")
    updates.apply(lite, add=load_documents([docs["care"]]), encoder=FakeEncoder())  # replace
    replaced = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert written.take() == (care, care)
    assert "900元" in "".join(p.text for p in replaced.passages if p.doc_id == "care")

    updates.apply(lite, remove=["care"], encoder=FakeEncoder())  # remove
    removed = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert written.take() == (0, care) and set(removed.documents) == {"article", "fund"}

    for index in (first, added, replaced, removed):  # every version loaded along the way: whole, and only itself
        _whole(config, index)
    assert _answers(first) == before  # the first reader's answers did not move while three versions were written
    rows, _ = replaced.search.lexical_top("", tokenize("长期护理保险每月补助900元"), 3)
    assert "900元" in replaced.passages[rows[0]].text
    assert not any(p.doc_id == "care" for p in removed.passages)


def test_retired_rows_are_deleted_so_storage_stays_bounded(lite, tmp_path):
    """Replaced ten times, a document leaves only the generations the kept versions still read."""
    docs, config = _docs(tmp_path), milvus_config(lite)
    updates.apply(lite, add=load_documents([DEFAULT_CORPUS, docs["care"]]), encoder=FakeEncoder())
    index = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    name, care = index.manifest.collections["passages"], sum(p.doc_id == "care" for p in index.passages)
    for n in range(10):
        docs["care"].write_text(CARE.replace("800元", f"{900 + n}元"), encoding="utf-8")
        updates.apply(lite, add=load_documents([docs["care"]]), encoder=FakeEncoder())
        # the newest version's rows, and the care rows each older kept version still reads
        assert milvus.row_count(config, name) == len(index.passages) + care * min(n + 1, store.KEEP_VERSIONS - 1)
    oldest = min(v for _, v in milvus_backend.kept_rows(lite.index_dir))
    assert milvus._count(milvus.connect(config), name, f"died <= {oldest}") == 0
    assert [n for n in milvus.connect(config).list_collections() if n.startswith(config.prefix)] == [name]


def test_a_build_after_a_restart_starts_a_collection_and_drops_the_old_one_when_retired(lite, tmp_path):
    """The old lineage's collection comes back released after a restart; a build neither needs it loaded nor drops it early."""
    docs, config = _docs(tmp_path), milvus_config(lite)
    updates.build(load_documents([DEFAULT_CORPUS, docs["care"]]), lite, FakeEncoder(), False)
    old = store.read_manifest(lite.index_dir).collections["passages"]
    milvus.release(config)  # as a new `qa build` process finds it
    updates.build(load_documents([DEFAULT_CORPUS, docs["care"]]), lite, FakeEncoder(), False)
    new = store.read_manifest(lite.index_dir).collections["passages"]
    client = milvus.connect(config)
    assert new != old and {old, new} <= set(client.list_collections())  # the version before still reads the old one
    for n in range(store.KEEP_VERSIONS):
        docs["care"].write_text(CARE.replace("800元", f"{900 + n}元"), encoding="utf-8")
        updates.apply(lite, add=load_documents([docs["care"]]), encoder=FakeEncoder())
    assert [c for c in client.list_collections() if c.startswith(config.prefix)] == [new]


_DYING = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from corpus.documents import load_documents
    from index import milvus
    from qa import updates
    from qa.settings import Settings
    from tests.conftest import FakeEncoder

    where, index_dir, cache_dir, uri, doc = sys.argv[1:]
    milvus.INSERT_BATCH = 10
    calls = []
    def dying(send):
        def call(client, name, rows):
            send(client, name, rows)
            calls.append(len(rows))
            if len(calls) == 3:  # 30 rows of the change are in: die mid-write
                os.kill(os.getpid(), signal.SIGKILL)
        return call
    if where == "insert":
        milvus._insert = dying(milvus._insert)
    else:
        milvus._upsert = dying(milvus._upsert)
    settings = Settings(index_dir=Path(index_dir), cache_dir=Path(cache_dir), backend="milvus", milvus_uri=uri)
    edited = load_documents([Path(doc)])[0]  # another file of the article: replacing it is explicit
    updates.apply(settings, replace_with={"article": edited}, encoder=FakeEncoder())
""")


@pytest.mark.parametrize("where", ["insert", "mark"])
def test_kill_9_mid_update_leaves_the_previous_version_and_the_next_writer_repairs(lite, tmp_path, where):
    """`qa add` killed with 30 of a replaced document's new rows in, or 30 of its old rows marked dead.

    Nothing is half-published: the previous version serves every acknowledged document
    whole; the leftovers no version sees are removed by the next writer, which succeeds.
    """
    docs, config = _docs(tmp_path), milvus_config(lite)
    updates.apply(lite, add=load_documents([DEFAULT_CORPUS, docs["care"]]), encoder=FakeEncoder())
    manifest = store.read_manifest(lite.index_dir)
    name = manifest.collections["passages"]
    milvus.release(config)  # let the writer process open the Lite folder
    source = Path(load_documents([DEFAULT_CORPUS])[0].path)
    article = tmp_path / "docs" / source.name  # the article edited: 48 passages replaced, in batches of 10
    article.write_text(source.read_text(encoding="utf-8").replace("社会保障", "社会保險"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", _DYING, where, str(lite.index_dir), str(lite.cache_dir),
                          lite.milvus_uri, str(article)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == -9, run.stderr
    assert store.read_manifest(lite.index_dir) == manifest  # the previous version is still the one published
    index = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert set(index.documents) == {"article", "care"}
    _whole(config, index)
    v = index.search.rows.version
    client = milvus.connect(config)
    left = (milvus._count(client, name, f"born > {v}"), milvus._count(client, name, f"died == {v + 1}"))
    assert left == ((30, 0) if where == "insert" else (48, 30))  # what the dead writer left, unseen

    updates.apply(lite, add=load_documents([docs["fund"]]), encoder=FakeEncoder())
    after = store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=config)
    assert set(after.documents) == {"article", "care", "fund"}
    _whole(config, after)
    fund = sum(p.doc_id == "fund" for p in after.passages)
    assert milvus._count(client, name, f"born > {v}") == fund  # the dead writer's rows are gone
    assert milvus._count(client, name, f"died < {milvus.ALIVE}") == 0  # and its death marks lifted
    assert milvus.row_count(config, name) == len(after.passages)
    assert "社会保險" not in "".join(p.text for p in after.passages)  # the unacknowledged edit never landed


def test_an_index_written_before_versioned_rows_is_refused_with_the_fix(lite):
    idx = _build(lite, [DEFAULT_CORPUS])
    manifest = idx.manifest
    files = {**manifest.files, "vocab.json": "0" * 64}
    (lite.index_dir / "manifest.json").write_text(
        __import__("json").dumps({**manifest.to_dict(), "files": files}), encoding="utf-8")
    with pytest.raises(IndexStoreError, match="before versioned rows; rebuild it with `qa build`"):
        store.load(lite.index_dir, FakeEncoder.model_id, lite.split, config=milvus_config(lite))


def test_with_milvus_bm25_a_change_writes_a_collection_of_its_own(lite, tmp_path):
    """`lexical=jieba`: Lite's BM25 scores a row by its segment's statistics, so a change is written whole.

    Rows added into a collection of their own scored 2.1 where a fresh build scored 37.5.
    """
    jieba, docs = lite.with_(milvus_lexical="jieba"), _docs(tmp_path)
    config = milvus_config(jieba)
    updates.apply(jieba, add=load_documents([DEFAULT_CORPUS, docs["care"]]), encoder=FakeEncoder())
    old = store.load(jieba.index_dir, FakeEncoder.model_id, jieba.split, config=config)
    updates.apply(jieba, add=load_documents([docs["fund"]]), encoder=FakeEncoder())
    new = store.load(jieba.index_dir, FakeEncoder.model_id, jieba.split, config=config)
    assert new.manifest.collections != old.manifest.collections
    for index in (old, new):
        _whole(config, index)
    question = "住房公积金缴存比例"
    rows, _ = new.search.lexical_top(question, tokenize(question), 3)
    assert new.passages[rows[0]].doc_id == "fund"
