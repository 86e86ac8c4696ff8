"""Seconds and rows sent for a one-document change on the Milvus backend at ~10,000 passages (not a test).

    .venv/bin/python -m eval.bench_milvus_change /tmp/out [../shared/data]

Runs unchanged on 68206e9 (a whole collection per version) and after (versioned rows),
so the two can be compared: 209 copies of the article (48 passages each, one sentence
edited per copy so no two rows are equal), then one ~8,000-character CMRC document
(eval/bench_update.py's) added, replaced and removed three times each on Milvus Lite.
The encoder hashes each text to a random 384-dim unit vector (the bundled model's
dimension): embedding the document costs the same either way and is left out, so the
figures are the index's own cost.  Rows are counted where they are sent (``_insert``
and, after, ``_upsert``), with pymilvus running underneath.
"""
from __future__ import annotations

import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from corpus.documents import DEFAULT_CORPUS, Document, load_documents
from eval.bench_update import new_document
from index import milvus
from qa import updates
from qa.settings import ROOT, Settings

COPIES = 209  # × 48 passages = 10,032


class HashEncoder:
    model_id, dim = "hash-random-384", 384

    def _one(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.md5(text.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def encode_queries(self, texts):
        return np.stack([self._one(t) for t in texts])

    def encode_passages(self, texts, progress=False):
        return np.stack([self._one(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def _counting(sent: dict) -> None:
    for kind in ("insert", "upsert"):
        send = getattr(milvus, f"_{kind}", None)
        if send is None:  # 68206e9 never upserts
            continue

        def counted(client, name, rows, send=send, kind=kind):
            sent[kind] += len(rows)
            send(client, name, rows)
        setattr(milvus, f"_{kind}", counted)


def main(out: Path, data: Path) -> dict:
    sent = {"insert": 0, "upsert": 0}
    _counting(sent)
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings().with_(index_dir=out / "index", cache_dir=out / "cache", documents_dir=out / "uploads",
                                backend="milvus", milvus_uri=str(out / "milvus.db"))
    encoder = HashEncoder()
    article = load_documents([DEFAULT_CORPUS])[0]
    docs = [Document(f"base{i:04d}", f"{article.path}#copy{i}", article.text.replace("。", f"。{i}", 1),
                     article.sha256 + str(i)) for i in range(COPIES)]
    started = time.perf_counter()
    updates.build(docs, settings, encoder, progress=False)
    doc = new_document(data, out)
    report = {"base_passages": updates.store.read_manifest(settings.index_dir).counts.passages,
              "build_s": round(time.perf_counter() - started, 1)}
    for step in ("add", "replace", "remove"):
        times = []
        for i in range(3):
            sent.update(insert=0, upsert=0)
            started = time.perf_counter()
            if step == "remove":
                updates.apply(settings, remove=[doc.doc_id], encoder=encoder)
            else:
                edited = Document(doc.doc_id, doc.path, doc.text + f"\n\n附记{i}。\n", doc.sha256 + f"r{i}")
                updates.apply(settings, add=[doc if step == "add" else edited], encoder=encoder)
            times.append(time.perf_counter() - started)
            if step != "replace" and i < 2:  # undo, untimed, to repeat the same change
                undo = {"remove": [doc.doc_id]} if step == "add" else {"add": [doc]}
                updates.apply(settings, encoder=encoder, **undo)
        report[step] = {"median_s": round(statistics.median(times), 2), "runs_s": [round(t, 2) for t in times],
                        "rows_inserted": sent["insert"], "rows_marked": sent["upsert"]}
    client = milvus.connect(updates.milvus_config(settings))
    report["collections"] = {n: client.get_collection_stats(n)["row_count"] for n in client.list_collections()}
    return report


if __name__ == "__main__":
    data = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT.parent / "shared" / "data"
    sys.stdout.write(json.dumps(main(Path(sys.argv[1]), data), indent=1) + "\n")  # a script: its answer is its output
