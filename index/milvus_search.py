"""``SearchIndex`` over one published version's rows in a Milvus collection (see index/milvus.py).

Every search filters to the version's rows (``born <= v < died``), so a reader keeps
its version whole while later ones are written beside it.  Hits come back by primary
key; the version's ``keys.npy`` maps each passage row of its folder to its key.
"""
from __future__ import annotations

import json

import numpy as np

from index import bm25
from index.milvus import FILTER_EF, QUERY_BATCH, MilvusConfig, MilvusError, Rows, connect, ensure_loaded, unpack
from index.search import Vectors

# lexical="ours": Milvus ranks by term weights written under the collection's first
# average length; the exact BM25 of this version may order a few candidates otherwise,
# so it fetches this many times k and rescores them exactly (equal after a full build).
LEXICAL_WIDENING = 2


class MilvusIndex:
    """``SearchIndex`` over one version of a collection."""

    def __init__(self, config: MilvusConfig, collections: dict[str, str], rows: Rows, keys: np.ndarray,
                 doc_rows: dict[str, np.ndarray], sentence_counts: np.ndarray, kind: str, dim: int) -> None:
        self.config, self.kind, self.dim, self.size = config, kind, dim, len(keys)
        self.rows, self.keys = rows, np.asarray(keys, dtype=np.int64)
        self._order = np.argsort(self.keys, kind="stable")
        self._name = collections["passages"]
        self._doc_rows, self._sentence_counts = doc_rows, sentence_counts
        self._idf = bm25.idf(np.array(rows.df, dtype=np.int64), self.size)
        self._client = connect(config)
        ensure_loaded(self._client, self._name, config)

    def _rows_of(self, keys) -> np.ndarray:
        keys = np.asarray(keys, dtype=np.int64)
        rows = self._order[np.searchsorted(self.keys, keys, sorter=self._order).clip(0, self.size - 1)]
        if len(keys) and not np.array_equal(self.keys[rows], keys):
            raise MilvusError(f"collection {self._name} returned rows this version does not hold; "
                              "rebuild it with `qa build`")
        return rows

    def _filter(self, docs: tuple[str, ...] | None = None) -> str:
        mine = self.rows.visible()
        return mine if docs is None else f"{mine} and doc_id in {json.dumps(list(docs), ensure_ascii=False)}"

    def _allowed(self, docs: tuple[str, ...]) -> np.ndarray:
        return self._doc_rows[docs[0]] if len(docs) == 1 else np.sort(np.concatenate([self._doc_rows[d] for d in docs]))

    def dense_top(self, query: np.ndarray, k: int, docs: tuple[str, ...] | None = None) -> np.ndarray:
        from index.dense import ef_search

        k = min(k, self.size)
        params: dict = {"metric_type": "IP"}
        if self.kind == "hnsw":
            # the version filter passes nearly every row; a document filter few of them
            params["params"] = {"ef": max(ef_search(k), FILTER_EF if docs else 0)}
        hits = self._client.search(self._name, data=[query.astype(np.float32).tolist()], anns_field="vector",
                                   limit=k, filter=self._filter(docs), search_params=params,
                                   output_fields=["key"])[0]
        rows = self._rows_of([_key(h) for h in hits])
        if docs is not None:
            allowed = self._allowed(docs)
            if len(rows) < min(k, len(allowed)):  # the graph missed some: score the document exactly
                scores = self._fetch(allowed, ["vector"])["vector"] @ query
                rows = allowed[np.argsort(-scores, kind="stable")[:k]]
        return rows

    def vectors(self, rows: np.ndarray) -> Vectors:
        found = self._fetch(rows, ["vector", "sentences"])
        sentences = found["sentences"]
        for r, v in zip(rows, sentences):
            if len(v) != self._sentence_counts[r]:
                raise MilvusError(f"collection {self._name} holds {len(v)} sentence vectors for passage {r}, "
                                  f"the index {self._sentence_counts[r]}; rebuild it with `qa build`")
        return Vectors(found["vector"], sentences)

    def _fetch(self, rows: np.ndarray, fields: list[str]) -> dict:
        """``fields`` of ``rows``, in order, by primary key."""
        rows = np.asarray(rows, dtype=np.int64)
        keys = self.keys[rows]
        found: dict[int, dict] = {}
        unique = np.unique(keys)
        for lo in range(0, len(unique), QUERY_BATCH):
            for r in self._client.query(self._name, filter=_in_filter(unique[lo:lo + QUERY_BATCH]),
                                        output_fields=["key"] + fields, limit=QUERY_BATCH):
                found[int(r["key"])] = r
        missing = [int(r) for r, k in zip(rows, keys) if int(k) not in found]
        if missing:
            raise MilvusError(f"collection {self._name} lacks passages {missing[:5]}; rebuild it with `qa build`")
        out: dict = {}
        for f in fields:
            values = [found[int(k)][f] for k in keys]
            if f == "vector":
                out[f] = np.array(values, dtype=np.float32).reshape(-1, self.dim)
            elif f == "sentences":
                out[f] = [unpack(v, self.dim) for v in values]
            else:
                out[f] = values
        return out

    def lexical_top(self, question: str, terms: list[str], k: int,
                    docs: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.size)
        if self.config.lexical == "jieba":
            return self._milvus_bm25(question, k, self._filter(docs))
        ids = self._query_ids(terms)
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        query: dict[int, float] = {}
        for t in ids:  # a repeated term counts again, as in bm25s
            query[t] = query.get(t, 0.0) + float(self._idf[t])
        hits = self._client.search(self._name, data=[query], anns_field="sparse",
                                   limit=min(k * LEXICAL_WIDENING, QUERY_BATCH), filter=self._filter(docs),
                                   search_params={"metric_type": "IP"}, output_fields=["key", "sparse", "length"])[0]
        rows = self._rows_of([_key(h) for h in hits])
        entity = [h.get("entity", h) for h in hits]
        scores = self._exact(ids, [e["sparse"] for e in entity], [e["length"] for e in entity])
        return _best(rows, scores, k)

    def lexical_scores(self, question: str, terms: list[str], rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return np.zeros(0, np.float32)
        if self.config.lexical == "jieba":
            found, scores = self._milvus_bm25(question, len(rows), _in_filter(self.keys[rows]))
            lookup = dict(zip(found.tolist(), scores.tolist()))
            return np.array([lookup.get(int(r), 0.0) for r in rows], dtype=np.float32)
        ids = self._query_ids(terms)
        if not ids:
            return np.zeros(len(rows), np.float32)
        stored = self._fetch(rows, ["sparse", "length"])
        return self._exact(ids, stored["sparse"], stored["length"])

    def _query_ids(self, terms: list[str]) -> list[int]:
        return [self.rows.vocab[t] for t in terms if t in self.rows.vocab and self.rows.vocab[t] < len(self._idf)]

    def _exact(self, ids: list[int], sparse: list[dict], lengths: list[int]) -> np.ndarray:
        rows = [{int(t): float(w) for t, w in s.items()} for s in sparse]
        return bm25.exact(ids, rows, np.array(lengths, dtype=np.float64), self.rows.stored_avgdl, self.rows.avgdl,
                          self._idf)

    def _milvus_bm25(self, question: str, limit: int, filter: str) -> tuple[np.ndarray, np.ndarray]:
        hits = self._client.search(self._name, data=[question], anns_field="sparse", limit=limit,
                                   filter=filter, search_params={"metric_type": "BM25"}, output_fields=["key"])[0]
        # Milvus Lite returns BM25 scores negated (best = most negative); a server returns
        # them positive. BM25 is never negative, so the magnitude is the score on both.
        rows = self._rows_of([_key(h) for h in hits])
        return _best(rows, np.array([abs(float(h["distance"])) for h in hits], dtype=np.float32), limit)

    def close(self) -> None:
        pass  # the client is shared by every version this process opens; release() ends it


def _best(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best positive scores, best first, ties by row as the FAISS backend."""
    keep = scores > 0
    rows, scores = rows[keep], scores[keep]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order].astype(np.int64), scores[order].astype(np.float32)


def _key(hit: dict) -> int:
    return int(hit["key"] if "key" in hit else hit["id"])


def _in_filter(keys: np.ndarray) -> str:
    return f"key in [{','.join(str(int(k)) for k in keys)}]"
