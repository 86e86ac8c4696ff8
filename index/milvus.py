"""The Milvus backend (the only module importing pymilvus or milvus_lite): connecting and writing rows.

One client code path for Milvus Lite embedded in the process (``QA_MILVUS_URI`` a
local ``….db`` path) and for a Milvus server or cluster (``http(s)://host:19530``).
An index folder's versions share one collection, ``<prefix>_<index key>_<lineage>_passages``
(the lineage: the build id of the full build that created it): ``key`` (primary key,
given once to a passage's row and never reused by a published version), ``doc_id`` (the
document filter), ``born`` and ``died`` (the versions that added and retired the row),
``vector`` (the passage embedding), ``sparse`` (lexical: our term weights by token id,
see index/bm25.py, or Milvus's own BM25 over a ``text`` field analysed by jieba, see
``LEXICAL``), ``length`` (the passage's BM25 length) and ``sentences`` (the passage's
sentence vectors, float16, packed).  Sentence vectors are never searched, only read with
their passage, so they ride in its row: one primary-key read per question brings every
candidate's vectors (a separate sentence collection filtered by passage took 40–80 ms a
question on Milvus Lite here).

Versioned rows: version v sees the rows with ``born <= v < died``.  A change writes only
the changed documents' rows (``born = v + 1``) and marks the rows of the documents it
replaces or removes ``died = v + 1`` (a partial upsert of two fields: no vector is sent
again); once they are flushed and visible, the index folder naming v + 1 is published
by the store's atomic swap.  A reader pinned to v sees neither, so it never meets half a
document.  A writer killed mid-way leaves rows that no published version sees; the next
writer removes them (``repair``) before it writes.  Rows no kept version can see are
deleted (``retire``); collections no kept version names are dropped (``drop_stale``).

``import pymilvus`` costs 1.4–2 s and an embedded server ~220 MB, so nothing here
imports it until a Milvus index is opened or written: the FAISS backend never pays.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

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
ALIVE = 2**62  # `died` of a row no version has retired (far beyond any version number)
VISIBLE_WAIT_S = 60  # bounded consistency lags by seconds (5 s by default on a server), never a minute


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


def collection_names(config: MilvusConfig, target: Path, lineage: str) -> dict[str, str]:
    return {"passages": f"{config.prefix}_{index_key(target)}_{lineage[:16]}_passages"}


def drop_stale(config: MilvusConfig, target: Path, keep: set[str]) -> list[str]:
    """Drop this index's collections that no kept version names (old lineages, or left by a killed writer)."""
    client = connect(config)
    mine = f"{config.prefix}_{index_key(target)}_"
    dropped = [name for name in client.list_collections() if name.startswith(mine) and name not in keep]
    for name in dropped:
        client.drop_collection(name)
    if dropped:
        log.info("dropped %d stale Milvus collections of %s", len(dropped), target)
    return dropped


# ---- what a version reads its rows with -------------------------------------------------------

@dataclass(frozen=True)
class Rows:
    """The rows one published version reads (its folder's ``milvus.json``)."""

    version: int  # this version's rows are those with born <= version < died
    next_key: int  # the first primary key no published row uses
    lexical: str  # what the collection's sparse field holds (see LEXICAL)
    stored_avgdl: float  # the average passage length the collection's term weights were written under
    avgdl: float  # this version's average passage length
    vocab: dict[str, int] = field(default_factory=dict)  # token → sparse dimension; ids are never reused
    df: tuple[int, ...] = ()  # passages of this version holding each token id

    def to_dict(self) -> dict:
        return {**asdict(self), "df": list(self.df)}

    @classmethod
    def from_dict(cls, raw: dict) -> "Rows":
        return cls(int(raw["version"]), int(raw["next_key"]), str(raw["lexical"]), float(raw["stored_avgdl"]),
                   float(raw["avgdl"]), {str(k): int(v) for k, v in raw["vocab"].items()},
                   tuple(int(d) for d in raw["df"]))

    def visible(self) -> str:
        return f"born <= {self.version} and died > {self.version}"


@dataclass(frozen=True)
class NewRows:
    """Passages to insert, in order, with everything their rows hold."""

    doc_ids: list[str]
    vectors: np.ndarray
    sentence_vectors: np.ndarray
    sentence_rows: np.ndarray  # passage i's sentences are sentence_vectors[sentence_rows[i]:sentence_rows[i + 1]]
    weights: list[dict[int, float]]  # lexical="ours": term weights (index/bm25.py)
    texts: list[str]  # lexical="jieba": what Milvus's BM25 analyses
    lengths: list[int]


# ---- writing ---------------------------------------------------------------------------------

def create(config: MilvusConfig, name: str, dim: int, dense_kind: str) -> None:
    """An empty collection with its indexes declared (loaded once its first rows are in)."""
    from pymilvus import DataType, Function, FunctionType

    client = connect(config)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("key", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=512)
    schema.add_field("born", DataType.INT64)
    schema.add_field("died", DataType.INT64)
    schema.add_field("length", DataType.INT32)
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


def insert(config: MilvusConfig, name: str, rows: NewRows, first_key: int, born: int) -> int:
    """Insert ``rows`` as keys ``first_key``… born in version ``born``; returns the rows sent."""
    client = connect(config)
    dim = rows.vectors.shape[1]
    batch = []
    for i, doc_id in enumerate(rows.doc_ids):
        lo, hi = rows.sentence_rows[i], rows.sentence_rows[i + 1]
        packed = pack(rows.sentence_vectors[lo:hi])
        if len(packed) > SENTENCES_MAX_CHARS:
            raise MilvusError(f"passage {i} of {doc_id} has {hi - lo} sentences; "
                              f"a Milvus row holds at most {SENTENCES_MAX_CHARS // (dim * 8 // 3)}")
        row = {"key": first_key + i, "doc_id": doc_id, "born": born, "died": ALIVE, "length": rows.lengths[i],
               "vector": rows.vectors[i], "sentences": packed}
        if config.lexical == "jieba":
            row["text"] = rows.texts[i]
        else:
            row["sparse"] = rows.weights[i] or {0: 0.0}  # Milvus refuses an empty sparse row
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            _insert(client, name, batch)
            batch = []
    if batch:
        _insert(client, name, batch)
    return len(rows.doc_ids)


def mark_dead(config: MilvusConfig, name: str, keys: np.ndarray, died: int) -> int:
    """Retire the rows ``keys`` from version ``died`` on; earlier versions still see them.

    A partial upsert sends two fields a row, never the vectors (Milvus ≥ 2.6 and Lite).
    """
    client = connect(config)
    keys = [int(k) for k in keys]
    for lo in range(0, len(keys), INSERT_BATCH):
        _upsert(client, name, [{"key": k, "died": died} for k in keys[lo:lo + INSERT_BATCH]])
    return len(keys)


def seal(config: MilvusConfig, name: str, born: int, died: int, expect_born: int, expect_died: int,
         full: bool) -> None:
    """Flush the version's writes and wait until a reader sees them all, before the folder is published.

    Unflushed rows sit in a growing segment that every search scans brute force (~30×
    slower here); flushing seals them so the declared index serves.  Readers search at
    the collection's default (bounded) consistency, which may lag the newest writes by
    a few seconds on a server: publishing only once a count sees every row keeps a
    reader of the new version from meeting part of a document.
    """
    client = connect(config)
    client.flush(name)
    if full:
        _check_index(client, name)
        _load(client, name, config)
    else:
        ensure_loaded(client, name, config)
    deadline = time.monotonic() + VISIBLE_WAIT_S
    while True:
        seen = (_count(client, name, f"born == {born}"), _count(client, name, f"died == {died}"))
        if seen == (expect_born, expect_died):
            return
        if time.monotonic() > deadline:
            raise MilvusError(f"Milvus shows {seen} of the {(expect_born, expect_died)} rows written to {name} "
                              f"after {VISIBLE_WAIT_S} s; the index is unchanged, try again")
        time.sleep(0.2)


def repair(config: MilvusConfig, name: str, published: int) -> int:
    """Undo what a writer killed after version ``published`` left: its rows go, its death marks are lifted.

    No published version sees either (a reader of ``published`` filters by it), so the
    repair changes no answer; it must run before the next writer reuses their keys.
    """
    client = connect(config)
    ensure_loaded(client, name, config)
    dead = _keys(client, name, f"died > {published} and died < {ALIVE}")
    if dead:
        for lo in range(0, len(dead), INSERT_BATCH):
            _upsert(client, name, [{"key": k, "died": ALIVE} for k in dead[lo:lo + INSERT_BATCH]])
    born = _count(client, name, f"born > {published}")
    if born:
        client.delete(name, filter=f"born > {published}")
    if born or dead:
        log.warning("removed %d rows and %d death marks a killed writer left in %s", born, len(dead), name)
    return born + len(dead)


def retire(config: MilvusConfig, name: str, oldest_kept: int) -> int:
    """Delete the rows no kept version sees (retired before the oldest kept version).

    Runs after the version is published, so a failure is MilvusError (the caller logs it
    and the next change retires them), never an error of the change itself.
    """
    from pymilvus.exceptions import MilvusException

    client = connect(config)
    try:
        ensure_loaded(client, name, config)
        gone = _count(client, name, f"died <= {oldest_kept}")
        if gone:
            client.delete(name, filter=f"died <= {oldest_kept}")
            log.info("deleted %d retired rows from %s", gone, name)
    except MilvusException as exc:
        raise MilvusError(f"could not delete the retired rows of {name}: {exc}") from None
    return gone


def row_count(config: MilvusConfig, name: str) -> int:
    """Rows stored in ``name``, of every version not yet retired."""
    return _count(connect(config), name, "")


def _count(client, name: str, filter: str) -> int:
    return int(client.query(name, filter=filter, output_fields=["count(*)"])[0]["count(*)"])


def _keys(client, name: str, filter: str) -> list[int]:
    keys, last = [], -1
    while True:  # by key, in pages: a query returns at most QUERY_BATCH rows
        page = client.query(name, filter=f"({filter}) and key > {last}", output_fields=["key"], limit=QUERY_BATCH)
        keys += sorted(int(r["key"]) for r in page)
        if len(page) < QUERY_BATCH:
            return keys
        last = keys[-1]


def _load(client, name: str, config: MilvusConfig) -> None:
    """Load a collection, with the configured in-memory replicas on a cluster (each serves reads)."""
    if config.replicas > 1 and not config.embedded:
        client.load_collection(name, replica_number=config.replicas)
    else:
        client.load_collection(name)


def _insert(client, name: str, rows: list[dict]) -> None:
    client.insert(name, rows)


def _upsert(client, name: str, rows: list[dict]) -> None:
    client.upsert(name, rows, partial_update=True)


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


def ensure_loaded(client, name: str, config: MilvusConfig) -> None:
    """Load a collection that is not: after a restart Milvus (Lite too) brings collections back released."""
    if not client.has_collection(name):
        raise MilvusError(f"Milvus has no collection {name}; the index names collections that are gone "
                          "(another Milvus, or dropped): rebuild it with `qa build`")
    state = client.get_load_state(name).get("state")
    if str(state) not in ("Loaded", "LoadState.Loaded", "<LoadState: Loaded>") and getattr(state, "name", "") != "Loaded":
        log.info("loading Milvus collection %s (state %s)", name, state)
        _load(client, name, config)
