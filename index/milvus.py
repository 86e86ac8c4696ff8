"""The Milvus backend (the only module importing pymilvus or milvus_lite).

One client code path for Milvus Lite embedded in the process (``QA_MILVUS_URI`` a
local ``….db`` path) and for a Milvus server or cluster (``http(s)://host:19530``).
Each index version owns one collection, ``<prefix>_<index key>_<build id>_passages``:
``row`` (primary key, the passage's row in ``passages.jsonl``), ``doc_id`` (the document
filter), ``vector`` (the passage embedding), ``sparse`` (lexical: our BM25 weights by
token id, or Milvus's own BM25 over a ``text`` field analysed by jieba, see ``LEXICAL``)
and ``sentences`` (the passage's sentence vectors, float16, packed).  Sentence vectors
are never searched, only read with their passage, so they ride in its row: one
primary-key read per question brings every candidate's vectors (a separate sentence
collection filtered by passage took 40–80 ms a question on Milvus Lite here).

A version's collection is complete, flushed, indexed and loaded before the index
folder that names it is published, so readers see the old version or the new one,
never half of one; collections of versions no longer kept, or of a writer killed
mid-way, are dropped by the next change (``drop_stale``).

``import pymilvus`` costs 1.4–2 s and an embedded server ~220 MB, so nothing here
imports it until a Milvus index is opened or written: the FAISS backend never pays.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.search import Vectors

log = logging.getLogger(__name__)

LEXICAL = ("ours", "jieba")  # sparse vectors from corpus/tokenize.py's tokens, or Milvus BM25 with jieba
INSERT_BATCH = 2_000  # rows per insert call; gRPC messages stay far under Milvus's 64 MB default
QUERY_BATCH = 16_384  # Milvus returns at most 16,384 rows per query (offset + limit)
# HNSW with a selective doc_id filter returns fewer than `limit` rows unless its breadth
# (ef) is raised: the graph walk visits ef nodes and the filter drops most of them.
# FLAT is exact and returns them all. Filtered searches use this breadth; any shortfall
# left is made up exactly from the document's own vectors (as the FAISS backend does).
FILTER_EF = 512
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80  # the FAISS backend's graph, for the same recall
TEXT_MAX = 65_535  # Milvus VARCHAR limit; a passage is ~250 characters plus its title
# float16 bytes in base64: 1,024 characters per 384-dim sentence, so a passage may hold
# 63 sentences (the article's passages hold at most 7, CMRC's at most 12)
SENTENCES_MAX_CHARS = 65_535


class MilvusError(RuntimeError):
    """Milvus cannot be reached, or holds something other than what the index expects."""


@dataclass(frozen=True)
class MilvusConfig:
    uri: str
    token: str = ""
    prefix: str = "qa"
    lexical: str = "ours"
    replicas: int = 1  # in-memory replicas on a cluster; Milvus Lite has one

    @property
    def embedded(self) -> bool:
        """Milvus Lite inside this process (a local path) rather than a server."""
        return not self.uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


# ---- connections ---------------------------------------------------------------------------

_clients: dict[tuple[str, str], object] = {}
_clients_lock = threading.Lock()


def connect(config: MilvusConfig):
    """A client for ``config.uri``, one per process and URI (Milvus Lite serves one per data folder)."""
    key = (_uri(config), config.token)
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        if config.embedded:
            Path(key[0]).parent.mkdir(parents=True, exist_ok=True)
        try:
            client = MilvusClient(uri=key[0], token=config.token)
        except MilvusException as exc:
            raise MilvusError(_explain(config, exc)) from None
        _clients[key] = client
        return client


def release(config: MilvusConfig) -> None:
    """Close this process's client, and for Milvus Lite stop its server and free the folder's lock.

    Milvus Lite locks its data folder for one process until that process exits; a
    command that is done with it (a test, a bench step) releases it for the next.
    """
    key = (_uri(config), config.token)
    with _clients_lock:
        client = _clients.pop(key, None)
    if client is not None:
        client.close()
    if config.embedded:
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(key[0])


def _uri(config: MilvusConfig) -> str:
    return str(Path(config.uri).absolute()) if config.embedded else config.uri


def _explain(config: MilvusConfig, exc: Exception) -> str:
    if config.embedded and _lite_locked(_uri(config)):
        return (f"the Milvus Lite data at {config.uri} is in use by another process (Milvus Lite allows one); "
                "stop it (a running `qa serve` takes documents over HTTP: POST /documents), "
                "or run a Milvus server and set QA_MILVUS_URI=http://host:19530")
    return f"cannot connect to Milvus at {config.uri} ({exc}); check QA_MILVUS_URI and QA_MILVUS_TOKEN"


def _lite_locked(path: str) -> bool:
    from milvus_lite.db import MilvusLite
    from milvus_lite.exceptions import DataDirLockedError

    try:
        MilvusLite(path).close()
    except DataDirLockedError:
        return True
    except Exception:  # another failure: the caller reports the original error
        return False
    return False


# ---- names ---------------------------------------------------------------------------------

def index_key(target: Path) -> str:
    """Eight hex digits naming one index folder's collections among others in the same Milvus."""
    return hashlib.sha256(str(Path(target).absolute()).encode()).hexdigest()[:8]


def collection_names(config: MilvusConfig, target: Path, build_id: str) -> dict[str, str]:
    return {"passages": f"{config.prefix}_{index_key(target)}_{build_id[:16]}_passages"}


def drop_stale(config: MilvusConfig, target: Path, keep_build_ids: set[str]) -> list[str]:
    """Drop this index's collections whose version is not kept (old, or left by a killed writer)."""
    client = connect(config)
    mine = f"{config.prefix}_{index_key(target)}_"
    keep = {build_id[:16] for build_id in keep_build_ids}
    dropped = [name for name in client.list_collections()
               if name.startswith(mine) and name[len(mine):].split("_")[0] not in keep]
    for name in dropped:
        client.drop_collection(name)
    if dropped:
        log.info("dropped %d stale Milvus collections of %s", len(dropped), target)
    return dropped


# ---- writing a version ---------------------------------------------------------------------

def write(config: MilvusConfig, target: Path, build_id: str, doc_ids: list[str], vectors: np.ndarray,
          sentence_vectors: np.ndarray, sentence_rows: np.ndarray, weights: list[dict[int, float]],
          texts: list[str], dense_kind: str) -> dict[str, str]:
    """Create, fill, flush, index and load one version's collection; returns its name by role.

    ``weights`` (per passage, token id → BM25 weight) feed ``lexical="ours"``; ``texts``
    (what was tokenized) feed Milvus's own BM25 for ``lexical="jieba"``.
    """
    from pymilvus import DataType, Function, FunctionType

    client = connect(config)
    names = collection_names(config, target, build_id)
    name = names["passages"]
    dim = vectors.shape[1]
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("row", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("sentences", DataType.VARCHAR, max_length=SENTENCES_MAX_CHARS)
    params = client.prepare_index_params()
    params.add_index("vector", **_dense_index(dense_kind))
    if config.lexical == "jieba":
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX, enable_analyzer=True,
                         analyzer_params={"tokenizer": "jieba"})
        schema.add_function(Function(name="bm25", function_type=FunctionType.BM25,
                                     input_field_names=["text"], output_field_names=["sparse"]))
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    else:
        params.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    _create(client, name, schema, params)
    batch = []
    for i, doc_id in enumerate(doc_ids):
        packed = pack(sentence_vectors[sentence_rows[i]:sentence_rows[i + 1]])
        if len(packed) > SENTENCES_MAX_CHARS:
            raise MilvusError(f"passage {i} of {doc_id} has {sentence_rows[i + 1] - sentence_rows[i]} sentences; "
                              f"a Milvus row holds at most {SENTENCES_MAX_CHARS // (dim * 8 // 3)}")
        row = {"row": i, "doc_id": doc_id, "vector": vectors[i], "sentences": packed}
        if config.lexical == "jieba":
            row["text"] = texts[i]
        else:
            row["sparse"] = weights[i] or {0: 0.0}  # Milvus refuses an empty sparse row
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            _insert(client, name, batch)
            batch = []
    if batch:
        _insert(client, name, batch)
    # Unflushed rows sit in a growing segment that every search scans brute force
    # (~30× slower here); flushing seals them so the index built above serves.
    client.flush(name)
    _check_index(client, name)
    _load(client, name, config)
    return names


def _load(client, name: str, config: MilvusConfig) -> None:
    """Load a collection, with the configured in-memory replicas on a cluster (each serves reads)."""
    if config.replicas > 1 and not config.embedded:
        client.load_collection(name, replica_number=config.replicas)
    else:
        client.load_collection(name)


def _insert(client, name: str, rows: list[dict]) -> None:
    client.insert(name, rows)


def pack(vectors: np.ndarray) -> str:
    """Sentence vectors as one string (float16, as the FAISS backend stores them)."""
    return base64.b64encode(np.ascontiguousarray(vectors, dtype=np.float16).tobytes()).decode("ascii")


def unpack(text: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float16).reshape(-1, dim).astype(np.float32)


def _create(client, name: str, schema, params) -> None:
    """A collection with its indexes declared, not loaded until it is full.

    ``sync=False``: pymilvus would otherwise poll the index state every 0.5 s through
    AllocTimestamp, which Milvus Lite does not implement (it logs a traceback each time);
    ``_check_index`` checks the build after the flush instead.
    """
    client.create_collection(name, schema=schema)
    client.create_index(name, params, sync=False)


def _dense_index(kind: str) -> dict:
    """The passage vectors' index: exact (FLAT) like FAISS's flat index, or the same HNSW graph."""
    if kind == "hnsw":
        return {"index_type": "HNSW", "metric_type": "IP",
                "params": {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}}
    return {"index_type": "FLAT", "metric_type": "IP"}


def _check_index(client, name: str) -> None:
    """The vector index asked for exists and is built (Milvus accepts some types it never builds)."""
    info = client.describe_index(name, "vector")
    if not info or info.get("state", "Finished") != "Finished" or \
            info.get("pending_index_rows", 0) or info.get("indexed_rows", 0) != info.get("total_rows", 0):
        raise MilvusError(f"Milvus did not build the index of {name}: {info}")


# ---- reading -------------------------------------------------------------------------------

class MilvusIndex:
    """``SearchIndex`` over one version's collection."""

    def __init__(self, config: MilvusConfig, collections: dict[str, str], doc_rows: dict[str, np.ndarray],
                 sentence_counts: np.ndarray, vocab: dict[str, int], kind: str, dim: int, size: int) -> None:
        self.config, self.kind, self.dim, self.size = config, kind, dim, size
        self._name = collections["passages"]
        self._doc_rows, self._sentence_counts, self._vocab = doc_rows, sentence_counts, vocab
        self._client = connect(config)
        ensure_loaded(self._client, self._name, config)

    def dense_top(self, query: np.ndarray, k: int, doc_id: str | None = None) -> np.ndarray:
        from index.dense import ef_search

        k = min(k, self.size)
        params: dict = {"metric_type": "IP"}
        if self.kind == "hnsw":
            params["params"] = {"ef": max(ef_search(k), FILTER_EF if doc_id else 0)}
        hits = self._client.search(self._name, data=[query.astype(np.float32).tolist()], anns_field="vector",
                                   limit=k, filter=_doc_filter(doc_id), search_params=params,
                                   output_fields=["row"])[0]
        rows = np.array([_row(h) for h in hits], dtype=np.int64)
        if doc_id is not None:
            allowed = self._doc_rows[doc_id]
            if len(rows) < min(k, len(allowed)):  # the graph missed some: score the document exactly
                scores = self._fetch(allowed, with_sentences=False)[0] @ query
                rows = allowed[np.argsort(-scores, kind="stable")[:k]]
        return rows

    def vectors(self, rows: np.ndarray) -> Vectors:
        passages, sentences = self._fetch(rows, with_sentences=True)
        return Vectors(passages, sentences)

    def _fetch(self, rows: np.ndarray, with_sentences: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        """Passage vectors (and sentence vectors) of ``rows``, in order, by primary key."""
        rows = np.asarray(rows, dtype=np.int64)
        fields = ["row", "vector"] + (["sentences"] if with_sentences else [])
        found: dict[int, dict] = {}
        unique = np.unique(rows)
        for lo in range(0, len(unique), QUERY_BATCH):
            for r in self._client.query(self._name, filter=_in_filter("row", unique[lo:lo + QUERY_BATCH]),
                                        output_fields=fields, limit=QUERY_BATCH):
                found[r["row"]] = r
        missing = [int(r) for r in unique if int(r) not in found]
        if missing:
            raise MilvusError(f"collection {self._name} lacks passages {missing[:5]}; rebuild it with `qa build`")
        passages = np.array([found[int(r)]["vector"] for r in rows], dtype=np.float32).reshape(-1, self.dim)
        sentences = [unpack(found[int(r)]["sentences"], self.dim) for r in rows] if with_sentences else []
        for r, v in zip(rows, sentences):
            if len(v) != self._sentence_counts[r]:
                raise MilvusError(f"collection {self._name} holds {len(v)} sentence vectors for passage {r}, "
                                  f"the index {self._sentence_counts[r]}; rebuild it with `qa build`")
        return passages, sentences

    def lexical_top(self, question: str, terms: list[str], k: int,
                    doc_id: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self._lexical(question, terms, min(k, self.size), _doc_filter(doc_id))

    def lexical_scores(self, question: str, terms: list[str], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, np.float32)
        found, scores = self._lexical(question, terms, len(rows), _in_filter("row", rows))
        lookup = dict(zip(found.tolist(), scores.tolist()))
        return np.array([lookup.get(int(r), 0.0) for r in rows], dtype=np.float32)

    def _lexical(self, question: str, terms: list[str], limit: int, filter: str) -> tuple[np.ndarray, np.ndarray]:
        if self.config.lexical == "jieba":
            data, params = [question], {"metric_type": "BM25"}
        else:
            query: dict[int, float] = {}
            for t in terms:  # a repeated term counts again, as in bm25s
                if t in self._vocab:
                    query[self._vocab[t]] = query.get(self._vocab[t], 0.0) + 1.0
            if not query:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            data, params = [query], {"metric_type": "IP"}
        hits = self._client.search(self._name, data=data, anns_field="sparse", limit=limit,
                                   filter=filter, search_params=params, output_fields=["row"])[0]
        # Milvus Lite returns BM25 scores negated (best = most negative); a server returns
        # them positive. BM25 is never negative, so the magnitude is the score on both.
        pairs = sorted(((abs(float(h["distance"])), _row(h)) for h in hits),
                       key=lambda p: (-p[0], p[1]))  # best first, ties by row as the FAISS backend
        pairs = [p for p in pairs if p[0] > 0]
        return (np.array([p[1] for p in pairs], dtype=np.int64), np.array([p[0] for p in pairs], dtype=np.float32))

    def close(self) -> None:
        pass  # the client is shared by every version this process opens; release() ends it


def _row(hit: dict) -> int:
    return int(hit["row"] if "row" in hit else hit["id"])


def ensure_loaded(client, name: str, config: MilvusConfig) -> None:
    """Load a collection that is not: after a restart Milvus (Lite too) brings collections back released."""
    if not client.has_collection(name):
        raise MilvusError(f"Milvus has no collection {name}; the index names collections that are gone "
                          "(another Milvus, or dropped): rebuild it with `qa build`")
    state = client.get_load_state(name).get("state")
    if str(state) not in ("Loaded", "LoadState.Loaded", "<LoadState: Loaded>") and getattr(state, "name", "") != "Loaded":
        log.info("loading Milvus collection %s (state %s)", name, state)
        _load(client, name, config)


def _doc_filter(doc_id: str | None) -> str:
    return "" if doc_id is None else f"doc_id == {json.dumps(doc_id, ensure_ascii=False)}"


def _in_filter(field: str, rows: np.ndarray) -> str:
    return f"{field} in [{','.join(str(int(r)) for r in rows)}]"
