"""A living index: add, replace, remove and sync documents; only changed text is embedded."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, CorpusError, load_documents
from index import lock, store
from index.store import IndexStoreError
from qa import updates
from qa.settings import Settings

from .conftest import BACKENDS, FakeEncoder, lite_released, milvus_variant


class Counting(FakeEncoder):
    """The fake encoder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def encode_passages(self, texts, progress=False):
        self.seen.extend(texts)
        return super().encode_passages(texts, progress)


CARE = "# 护理保险办法\n\n## 一、待遇\n\n长期护理保险每月补助800元。失能老人可申请上门护理。\n"
FUND = "公积金通知\n\n住房公积金缴存比例为12%。提取需提供购房合同。\n"


@pytest.fixture(params=BACKENDS)
def setup(request, tmp_path):
    """An index folder's settings and a documents folder; every test here runs on both backends."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "care.md").write_text(CARE, encoding="utf-8")
    settings = Settings().with_(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                                documents_dir=tmp_path / "uploads")
    if request.param == "milvus":
        settings = milvus_variant(settings, tmp_path)
    with lite_released(settings):
        yield settings, docs


def _load(settings):
    from qa.loading import milvus_config

    return store.load(settings.index_dir, FakeEncoder.model_id, settings.split, config=milvus_config(settings))


def _same_index(a, b) -> None:
    """Two indexes hold the same documents, passages, vectors and keyword scores."""
    assert list(a.documents) == list(b.documents)
    assert a.passages == b.passages
    rows = np.arange(len(a.passages))
    va, vb = a.search.vectors(rows), b.search.vectors(rows)
    assert np.allclose(va.passages, vb.passages, atol=1e-6)
    assert all(np.array_equal(x, y) for x, y in zip(va.sentences, vb.sentences))
    from corpus.tokenize import tokenize

    for q in ("长期护理保险", "住房公积金缴存比例", "社会保障"):
        assert np.allclose(a.search.lexical_scores(q, tokenize(q), rows), b.search.lexical_scores(q, tokenize(q), rows))


def test_adding_embeds_only_the_new_document_and_equals_a_full_build(setup, tmp_path):
    settings, docs = setup
    encoder = Counting()
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS, docs / "care.md"]), encoder=encoder)
    (docs / "fund.txt").write_text(FUND, encoding="utf-8")
    encoder.seen.clear()
    change = updates.apply(settings, add=load_documents([docs / "fund.txt"]), encoder=encoder)
    assert (change.added, change.replaced, change.removed, change.unchanged) == (("fund",), (), (), 2)
    assert encoder.seen and all("住房公积金" in t or "提取" in t for t in encoder.seen)  # nothing else
    fresh = settings.with_(index_dir=tmp_path / "fresh", cache_dir=tmp_path / "fresh-cache")
    updates.build(load_documents([DEFAULT_CORPUS, docs / "care.md", docs / "fund.txt"]), fresh, FakeEncoder(), False)
    _same_index(_load(settings), _load(fresh))


def test_replacing_and_removing(setup):
    settings, docs = setup
    encoder = Counting()
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS, docs]), encoder=encoder)
    first = store.read_manifest(settings.index_dir).build_id
    (docs / "care.md").write_text(CARE.replace("800元", "900元"), encoding="utf-8")
    encoder.seen.clear()
    change = updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=encoder)
    assert change.replaced == ("care",) and change.manifest.build_id != first
    assert all("社会保障" not in t for t in encoder.seen)  # the article was not embedded again
    assert "900元" in _load(settings).documents["care"].text
    index = _load(settings)
    assert index.documents["care"].added_at >= index.documents["article"].added_at != ""
    change = updates.apply(settings, remove=["care"], encoder=encoder)
    assert change.removed == ("care",) and set(_load(settings).documents) == {"article"}
    with pytest.raises(IndexStoreError, match="no document with id 'nope'"):
        updates.apply(settings, remove=["nope"], encoder=encoder)
    with pytest.raises(IndexStoreError, match="would leave the index .* empty"):
        updates.apply(settings, remove=["article"], encoder=encoder)


def test_the_same_content_again_changes_nothing(setup):
    settings, docs = setup
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS, docs]), encoder=FakeEncoder())
    before = store.read_manifest(settings.index_dir).build_id
    change = updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=FakeEncoder())
    assert (change.added, change.replaced, change.unchanged) == ((), (), 2)
    assert store.read_manifest(settings.index_dir).build_id == before


def test_one_document_to_several_embeds_again_under_titles(setup, tmp_path):
    """One document is embedded bare, several under their titles: crossing the line re-embeds all (cached after)."""
    settings, docs = setup
    updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=FakeEncoder())
    assert store.read_manifest(settings.index_dir).context_header == "none"
    added = _load(settings).documents["care"].added_at
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS]), encoder=FakeEncoder())
    assert _load(settings).documents["care"].added_at == added  # embedded again, but its content is as old as before
    fresh = settings.with_(index_dir=tmp_path / "fresh", cache_dir=tmp_path / "fresh-cache")
    updates.build(load_documents([docs / "care.md", DEFAULT_CORPUS]), fresh, FakeEncoder(), False)
    assert _load(settings).manifest.context_header == "title"
    _same_index(_load(settings), _load(fresh))


def test_a_rebuild_of_known_text_embeds_nothing(setup):
    settings, docs = setup
    updates.build(load_documents([DEFAULT_CORPUS, docs]), settings, Counting(), False)
    again = Counting()
    updates.build(load_documents([DEFAULT_CORPUS, docs]), settings, again, False)
    assert again.seen == []


def test_sync_adds_reindexes_and_drops_only_its_folders_documents(setup):
    settings, docs = setup
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS, docs]), encoder=FakeEncoder())
    (docs / "fund.txt").write_text(FUND, encoding="utf-8")
    (docs / "care.md").unlink()
    change = updates.sync(settings, docs, encoder=FakeEncoder())
    assert (change.added, change.removed) == (("fund",), ("care",))
    assert set(_load(settings).documents) == {"article", "fund"}  # the article came from elsewhere: kept
    (docs / "fund.txt").write_text(FUND.replace("12%", "10%"), encoding="utf-8")
    assert updates.sync(settings, docs, encoder=FakeEncoder()).replaced == ("fund",)


def _kept(settings) -> list[str]:
    """The documents folder's files, as <hash folder>/<name>, staging included."""
    folder = settings.documents_dir
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_uploads_are_named_by_id_and_content_and_never_by_the_clients_path(setup):
    settings, _ = setup
    up = updates.stage_upload(settings, "../../etc/护理 办法.md", CARE.encode())
    assert up.document.doc_id == "护理-办法"
    assert up.document.path == str(settings.documents_dir / up.document.sha256[:16] / "护理-办法.md")
    assert _kept(settings) == [f"{updates.STAGING}/{os.getpid()}/{up.staged.name}"]  # staged, not kept yet
    with pytest.raises(CorpusError, match=r"^x\.exe: unsupported file type"):
        updates.stage_upload(settings, "x.exe", b"MZ")
    with pytest.raises(CorpusError, match="^bad.md: not valid UTF-8"):  # the client's name, never a server path
        updates.stage_upload(settings, "bad.md", "社保".encode("gbk"))
    assert len(_kept(settings)) == 1  # nothing half-kept
    updates.apply(settings, uploads=[up], encoder=FakeEncoder())
    assert _kept(settings) == [f"{up.document.sha256[:16]}/护理-办法.md"]
    updates.apply(settings, add=load_documents([DEFAULT_CORPUS]), encoder=FakeEncoder())
    updates.apply(settings, remove=[up.document.doc_id], encoder=FakeEncoder())
    assert _kept(settings) == []  # a removed upload's file goes too


def test_a_refused_upload_changes_nothing(setup):
    """A file with no body text, or a replacement of a document that is not there: the version
    served and its files stay exactly as they were, and loading it checks out."""
    settings, _ = setup
    updates.apply(settings, uploads=[updates.stage_upload(settings, "other.md", CARE.encode())], encoder=FakeEncoder())
    before, files = _load(settings).manifest.build_id, _kept(settings)
    heading_only = updates.stage_upload(settings, "other.html", b"<h1>only a heading</h1>")
    with pytest.raises(CorpusError, match="other.html: .*no body text"):
        updates.apply(settings, uploads=[heading_only, updates.stage_upload(settings, "fund.txt", FUND.encode())],
                      encoder=FakeEncoder())
    nowhere = updates.stage_upload(settings, "fund.txt", FUND.encode(), doc_id="nope")
    with pytest.raises(IndexStoreError, match="no document nope to replace"):
        updates.apply(settings, uploads=[nowhere], encoder=FakeEncoder())
    assert _load(settings).manifest.build_id == before and _kept(settings) == files  # other.md kept, nothing staged


def test_a_document_is_its_source_never_its_name(setup, tmp_path):
    """Issue #22: a same-named file of another type, or from another folder, is a new document;
    the same bytes again are reported, never stored twice; only an explicit replacement (or the
    same file read again) replaces."""
    settings, docs = setup
    updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=FakeEncoder())
    (docs / "care.html").write_text("<h1>护理</h1><p>护理保险由医保经办机构经办。</p>", encoding="utf-8")
    change = updates.apply(settings, add=load_documents([docs / "care.html"]), encoder=FakeEncoder())
    assert change.added == ("care-2",) and change.replaced == ()
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "care.md").write_text(CARE.replace("800元", "700元"), encoding="utf-8")
    assert updates.apply(settings, add=load_documents([other]), encoder=FakeEncoder()).added == ("care-3",)
    (docs / "care.md").write_text(CARE.replace("800元", "900元"), encoding="utf-8")  # the same file, changed
    assert updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=FakeEncoder()).replaced == ("care",)
    # uploads: a new name-twin is kept beside; the same bytes under any name are not stored again
    twins = [updates.stage_upload(settings, "a/care.md", FUND.encode()),
             updates.stage_upload(settings, "b/care.txt", FUND.replace("12%", "8%").encode()),
             updates.stage_upload(settings, "copy.md", (docs / "care.md").read_bytes()),
             updates.stage_upload(settings, "again.md", FUND.encode())]
    change = updates.apply(settings, uploads=twins, encoder=FakeEncoder())
    assert change.added == ("care-4", "care-5") and change.duplicates == (("copy.md", "care"), ("again.md", "care-4"))
    index = _load(settings)
    assert set(index.documents) == {"care", "care-2", "care-3", "care-4", "care-5"}
    assert "12%" in index.documents["care-4"].text and "8%" in index.documents["care-5"].text
    assert sorted(p.split("/")[1] for p in _kept(settings)) == ["care-4.md", "care-5.txt"]  # no duplicate kept
    # replacing is explicit, and keeps the id whatever the file is called
    put = updates.stage_upload(settings, "新版.md", CARE.replace("800元", "1000元").encode(), doc_id="care-3")
    assert updates.apply(settings, uploads=[put], encoder=FakeEncoder()).replaced == ("care-3",)
    assert "1000元" in _load(settings).documents["care-3"].text
    local = load_documents([docs / "care.html"])[0]
    from dataclasses import replace

    change = updates.apply(settings, replace_with={"care-5": replace(local, doc_id="care-5")}, encoder=FakeEncoder())
    assert change.replaced == ("care-5",) and "医保经办" in _load(settings).documents["care-5"].text


def test_a_renamed_file_is_moved_not_lost(setup):
    """sync sees a file by its path: renamed with the same bytes, the old document goes and the new one
    comes (its bytes are not a duplicate of a document the same change removes)."""
    settings, docs = setup
    updates.sync(settings, docs, encoder=FakeEncoder())
    (docs / "care.md").rename(docs / "护理.md")
    change = updates.sync(settings, docs, encoder=FakeEncoder())
    assert (change.added, change.removed, change.duplicates) == (("护理",), ("care",), ())
    assert set(_load(settings).documents) == {"护理"}


def test_a_replacement_never_touches_the_file_the_served_version_names(setup):
    settings, _ = setup
    first = updates.stage_upload(settings, "fund.txt", FUND.encode())
    updates.apply(settings, uploads=[first], encoder=FakeEncoder())
    second = updates.stage_upload(settings, "fund.txt", FUND.replace("12%", "10%").encode())
    updates._place([second])  # where a change killed before publishing stops
    assert len(_kept(settings)) == 2
    index = _load(settings)  # the sources still check out
    assert "12%" in index.documents["fund"].text
    updates.tidy_uploads(settings)  # at start-up: the leftover goes, the served file stays
    assert _kept(settings) == [f"{first.document.sha256[:16]}/fund.txt"]


@pytest.mark.slow
def test_writers_wait_for_each_other_across_processes(setup, real_settings):
    """A `qa add` started while another writer holds the lock waits, then builds on that writer's version."""
    settings, docs = setup
    if settings.backend == "milvus":
        pytest.skip("Milvus Lite admits one process (tests/test_milvus.py checks the message); "
                    "writers in several processes need a Milvus server")
    settings = settings.with_(models_dir=real_settings.models_dir)
    (docs / "fund.txt").write_text(FUND, encoding="utf-8")
    from qa.loading import build_encoder

    encoder = build_encoder(settings)
    updates.apply(settings, add=load_documents([docs / "care.md"]), encoder=encoder)
    env = {**os.environ, "QA_INDEX_DIR": str(settings.index_dir), "QA_CACHE_DIR": str(settings.cache_dir),
           "QA_MODELS_DIR": str(settings.models_dir)}
    with lock.writing(settings.index_dir):
        shell = subprocess.Popen([sys.executable, "-m", "qa.cli", "add", str(docs / "fund.txt"), "--quiet"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # while we hold the lock, publish a change of our own, as the server would for an upload
        from index.build import update_index

        update_index(settings.index_dir, encoder, settings.split, load_documents([DEFAULT_CORPUS]), [], progress=False)
    out, err = shell.communicate(timeout=300)
    assert shell.returncode == 0, err
    assert set(store.read_manifest(settings.index_dir).documents[i].doc_id for i in range(3)) == {"care", "article", "fund"}
