"""SQuAD-format files (CMRC 2018, DRCD, DuReader) as documents and labelled questions."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from corpus.documents import Document
from eval.dataset import DatasetError

log = logging.getLogger(__name__)


def load_squad(path: Path) -> tuple[list[Document], list[dict]]:
    """Each context becomes a document; each question keeps its answer span in that document."""
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (ValueError, KeyError, UnicodeDecodeError):
        raise DatasetError(f"{path}: not a SQuAD-format JSON file (needs data[].paragraphs[])") from None
    documents, questions, seen, skipped = [], [], set(), 0
    index = -1  # the paragraph's place in the file (eval/splits.py)
    for a, article in enumerate(data):
        for b, para in enumerate(article.get("paragraphs", [])):
            index += 1
            context = para.get("context", "")
            if not context.strip():
                continue
            doc_id = str(para.get("id") or f"{article.get('id', a)}-{b}")
            if doc_id in seen:
                doc_id = f"{doc_id}-{b}"
            seen.add(doc_id)
            # The article title becomes the document's heading, as it would in a real corpus.
            title = str(article.get("title") or "").strip()
            header = f"# {title}\n\n" if title else ""
            text = header + context
            sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
            documents.append(Document(doc_id, f"{path}#{doc_id}", text, sha))
            for qa in para.get("qas", []):
                answers = [x for x in qa.get("answers", []) if x.get("text")]
                if not answers or not str(qa.get("question", "")).strip():
                    skipped += 1  # nothing to ask or nothing to find: not a usable question
                    continue
                first = answers[0]
                start = int(first.get("answer_start", context.find(first["text"])))
                if context[start : start + len(first["text"])] != first["text"]:
                    start = context.find(first["text"])
                if start < 0:
                    skipped += 1
                    continue
                offset = len(header)
                questions.append({
                    "id": str(qa.get("id", len(questions))), "question": qa["question"], "doc_id": doc_id,
                    "answer": first["text"], "span": (offset + start, offset + start + len(first["text"])),
                    "answers": list(dict.fromkeys(x["text"] for x in answers)),  # every gold, for span EM/F1
                    "context_index": index,
                })
    if not documents:
        raise DatasetError(f"{path}: holds no contexts")
    if skipped:
        log.warning("%s: skipped %d questions with no question text or no locatable answer", path.name, skipped)
    return documents, questions
