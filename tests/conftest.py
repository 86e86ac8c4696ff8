"""Shared fixtures: the real article, a deterministic fake encoder, and one real index per session."""
from __future__ import annotations

import contextlib
import hashlib

import numpy as np
import pytest

from corpus.documents import DEFAULT_CORPUS, load_documents
from qa.settings import ROOT, Settings

ARTICLE = DEFAULT_CORPUS / "article.md"
SHARED_DATA = ROOT.parent / "shared" / "data"


class FakeEncoder:
    """Deterministic embeddings: character bigrams hashed into 64 dimensions, L2-normalised.

    Texts sharing bigrams are close, so retrieval behaves sensibly and exactly
    reproducibly without a model.
    """

    model_id = "fake-bigram-64"
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for i in range(len(text) - 1):
            h = int.from_bytes(hashlib.md5(text[i : i + 2].encode()).digest()[:4], "little")
            v[h % self.dim] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode_queries(self, texts):
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts, progress=False):
        self.calls += 1
        return self.encode_queries(texts)

    def count_tokens(self, texts):
        return [len(t) for t in texts]  # one token per character: exact numbers for tests


@pytest.fixture()
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def article_text() -> str:
    return ARTICLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def article_docs():
    return load_documents([DEFAULT_CORPUS])


@pytest.fixture(scope="session")
def real_settings(tmp_path_factory) -> Settings:
    """Settings for the real model, with an index of the article built once in a temp folder."""
    from index.build import build_index
    from index.models import load_encoder, prepare

    folder = tmp_path_factory.mktemp("real")  # nothing a test does lands in the project's var/
    # No per-client limit on questions: the tests ask far faster than a client should, all as one
    # client; tests/test_fairness.py checks the limit with a clock of its own.
    settings = Settings().with_(index_dir=folder / "index", cache_dir=folder / "cache", documents_dir=folder / "uploads",
                                kbs_dir=folder / "kbs", rate_per_s=0)
    prepare(settings.models_dir)  # no-op when `make test` already prepared it
    encoder = load_encoder(settings.model, settings.models_dir, engine="torch")
    build_index(load_documents(list(settings.corpus)), encoder, settings.split, settings.index_dir, progress=False)
    return settings


# Milvus Lite starts a server per folder: its variants are slow (`pytest -m "not slow"` runs FAISS only).
BACKENDS = ("faiss", pytest.param("milvus", marks=pytest.mark.slow))


def milvus_variant(settings: Settings, folder) -> Settings:
    """``settings`` on the Milvus backend, with a Milvus Lite data folder of its own under ``folder``."""
    return settings.with_(backend="milvus", milvus_uri=str(folder / "milvus.db"))


@contextlib.contextmanager
def lite_released(settings: Settings):
    """Milvus Lite locks its folder for one process: free it when done (or before a subprocess uses it)."""
    try:
        yield settings
    finally:
        if settings.backend == "milvus":
            from index import milvus
            from qa.loading import milvus_config

            milvus.release(milvus_config(settings))


@pytest.fixture(scope="session")
def milvus_settings(real_settings, tmp_path_factory):
    """The session's article index again, its vectors in Milvus Lite (republished: nothing embedded twice)."""
    import time
    from types import SimpleNamespace

    from index import store
    from index.build import publish
    from index.models import model_id
    from qa.loading import milvus_config

    folder = tmp_path_factory.mktemp("milvus")
    settings = milvus_variant(real_settings.with_(index_dir=folder / "index"), folder)
    current = store.load(real_settings.index_dir, model_id(settings.model), settings.split)
    encoder = SimpleNamespace(model_id=current.manifest.model.id, dim=current.manifest.model.dim)
    publish(settings.index_dir, store.parts_of(current, list(current.documents)), encoder, settings.split,
            current.manifest.context_header, time.perf_counter(), config=milvus_config(settings))
    with lite_released(settings):
        yield settings


@pytest.fixture(scope="session")
def milvus_service(milvus_settings, service):
    from qa.loading import load_service

    return load_service(milvus_settings, previous=service)  # the same encoder: loaded once


@pytest.fixture(scope="session")
def st_encoder(real_settings):
    """The converted sentence-transformers model (torch), loaded once."""
    from index.models import load_encoder

    return load_encoder(real_settings.model, real_settings.models_dir, engine="torch")


@pytest.fixture(scope="session")
def service(real_settings):
    from qa.loading import load_service

    return load_service(real_settings)


@pytest.fixture(scope="session")
def reader_service(real_settings):
    """The article's service with the trained reader (QA_READER=trained)."""
    from qa.loading import load_service

    return load_service(real_settings.with_(reader="trained"))


@pytest.fixture(scope="session")
def app(real_settings, service):
    from api.app import create_app

    return create_app(real_settings, service=service)


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@contextlib.contextmanager
def serving(app):
    """Serve ``app`` with uvicorn on a free loopback port in a background thread."""
    import threading
    import time

    import uvicorn

    from eval.serving import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(app):
    with serving(app) as url:
        yield url


@contextlib.contextmanager
def small_server(backend: str, real_settings, tmp_path, files: dict[str, str], **changes):
    """A real server over an index of ``files`` ({name: text}) of its own, on ``backend``, with the
    settings ``changes``; yields (an HTTP client, its settings)."""
    import httpx

    from api.app import create_app
    from corpus.documents import load_documents
    from qa import updates
    from qa.loading import update_encoder

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = real_settings.with_(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache",
                                   documents_dir=tmp_path / "uploads", **changes)
    if backend == "milvus":
        settings = milvus_variant(settings, tmp_path)
    with lite_released(settings):
        updates.apply(settings, add=load_documents([docs]), encoder=update_encoder(settings))
        with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=120) as client:
            yield client, settings
