"""`qa eval`: run every retriever over a labelled set and report the numbers."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from eval import metrics
from eval.dataset import DEFAULT_DATASET, DatasetError, Squashed, load_jsonl
from eval.splits import CMRC, cmrc_part
from eval.styles import KEYWORD_DATASET, STYLES, strip_question
from qa.service import QAService
from qa.settings import ROOT, Settings

log = logging.getLogger(__name__)
RETRIEVERS = ("bm25", "dense", "hybrid", "pipeline")


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answerable: bool
    doc_id: str | None
    evidence: tuple[tuple[int, int], ...]  # spans in the squashed document text
    answer: str
    tags: tuple[str, ...]
    golds: tuple[str, ...] = ()  # every accepted short answer (SQuAD files list several)


class Docs:
    """Squashed views of the index's documents, made once each."""

    def __init__(self, service: QAService) -> None:
        self.service = service
        self._cache: dict[str, Squashed] = {}

    def __getitem__(self, doc_id: str) -> Squashed:
        if doc_id not in self._cache:
            self._cache[doc_id] = Squashed(self.service.document(doc_id).text)
        return self._cache[doc_id]


def labelled_items(service: QAService, questions, only: str | None = None) -> list[EvalItem]:
    """The labelled set's items; a question without a ``doc`` is about ``only``, else the index's one document."""
    docs = Docs(service)
    known = {d.doc_id for d in service.documents()}
    only = only or (next(iter(known)) if len(known) == 1 else None)
    items = []
    for q in questions:
        if not q.answerable:
            items.append(EvalItem(q.id, q.question, False, None, (), "", q.tags))
            continue
        doc_id = q.doc or only
        if doc_id is None:
            raise DatasetError(f"{q.id}: 'doc' is required when the index holds several documents")
        if doc_id not in known:
            raise DatasetError(f"{q.id}: document '{doc_id}' is not in the index")
        spans = []
        for evidence in (q.evidence, *q.alt_evidence):
            found = docs[doc_id].find_all(evidence)
            if not found:
                raise DatasetError(f"{q.id}: evidence not found in document '{doc_id}': {evidence[:40]}…")
            spans += found
        items.append(EvalItem(q.id, q.question, True, doc_id, tuple(spans), q.answer, q.tags, (q.answer,)))
    return items


def squad_items(service: QAService, questions: list[dict]) -> list[EvalItem]:
    docs = Docs(service)
    return [
        EvalItem(q["id"], q["question"], True, q["doc_id"], (docs[q["doc_id"]].span(*q["span"]),), q["answer"], (),
                 tuple(q.get("answers", [q["answer"]])))
        for q in questions
    ]


def stripped(items: list[EvalItem]) -> list[EvalItem]:
    """The same questions with question words and punctuation removed (``--style stripped``)."""
    return [replace(i, question=strip_question(i.question)) for i in items]


def relevant_passages(service: QAService, docs: Docs, item: EvalItem) -> set[str]:
    sq = docs[item.doc_id]
    return {
        p.id for p in service.passages_of(item.doc_id)
        if any(metrics.is_relevant(sq.span(p.start, p.end), ev) for ev in item.evidence)
    }


def _answer_correct(docs: Docs, item: EvalItem, answer) -> bool:
    if answer is None or answer.doc_id != item.doc_id:
        return False
    squashed_answer = "".join(answer.text.split())
    if "".join(item.answer.split()) in squashed_answer:
        return True
    span = docs[item.doc_id].span(answer.start, answer.end)
    return any(metrics.overlap(span, ev) > 0 for ev in item.evidence)


def evaluate(service: QAService, items: list[EvalItem], name: str, settings: Settings, progress: bool = False) -> dict:
    """Every retriever's metrics, answer accuracy, no-answer figures, latency, per-tag numbers."""
    from tqdm import tqdm

    docs = Docs(service)
    rankings = defaultdict(list)
    relevants, latencies, rows = [], [], []
    refused, truth, confidences = [], [], {True: [], False: []}
    outside = 0
    for item in tqdm(items, desc=f"eval {name}", disable=not progress, unit="q"):
        started = time.perf_counter()
        result, ranked = service.ask_with_rankings(item.question, top_k=10)
        latencies.append((time.perf_counter() - started) * 1000)
        refused.append(not result.answerable)
        truth.append(item.answerable)
        confidences[item.answerable].append(result.confidence)
        if not item.answerable:
            rows.append({"item": item, "result": result})
            continue
        relevant = relevant_passages(service, docs, item)
        if relevant:  # a byline or title in no passage is the document's facts' to answer, not retrieval's
            relevants.append(relevant)
            for r in RETRIEVERS:
                rankings[r].append(ranked[r])
        else:
            outside += 1
        correct = result.answerable and _answer_correct(docs, item, result.answer)
        rows.append({"item": item, "result": result, "relevant": relevant, "correct": correct,
                     "top_relevant": bool(result.hits) and result.hits[0].passage_id in relevant,
                     "top_document": bool(result.hits) and result.hits[0].doc_id == item.doc_id,
                     **_span_scores(item, result)})
    answered = [r for r in rows if r["item"].answerable]
    info = service.info()
    report = {
        "dataset": name,
        "questions": len(items),
        "unanswerable": sum(not i.answerable for i in items),
        "outside_passages": outside,  # answerable questions whose evidence lies in no passage: not in retrieval figures
        "retrievers": {r: metrics.retrieval_metrics(rankings[r], relevants) for r in RETRIEVERS},
        "no_answer": metrics.no_answer_metrics(refused, truth),
        "latency_ms": {"p50": metrics.percentile(latencies, 50), "p95": metrics.percentile(latencies, 95)},
        "by_tag": _by_tag([r for r in answered if r["relevant"]], rankings["pipeline"]),
        "no_answer_by_tag": _refused_by_tag([r for r in rows if not r["item"].answerable]),
        "calibration": {
            "threshold": settings.no_answer_threshold,
            "suggested_threshold": metrics.best_threshold(confidences[True], confidences[False]),
            "answerable_confidence_p5": metrics.percentile(confidences[True], 5),
            "unanswerable_confidence_p95": metrics.percentile(confidences[False], 95),
        },
        "settings": {k: v for k, v in asdict(settings).items()
                     if k in ("candidates", "lexical_weight", "passage_chars", "overlap_sentences", "engine")},
        "index": {"model": info.model, "passages": info.passages, "passage_chars": info.passage_chars,
                  "min_chars": info.min_chars},
    }
    report["retrievers"]["pipeline"]["answer_accuracy"] = round(
        sum(r["correct"] for r in answered) / len(answered), 4) if answered else 0.0
    report["retrievers"]["pipeline"].update(_answer_figures(answered))
    report["by_type"] = _by_type(answered)
    report["misses"] = _misses(rows)
    return report


def _span_scores(item: EvalItem, result) -> dict[str, float]:
    """CMRC 2018 EM/F1 of the short answer and, as the baseline, of the whole answer sentence
    (0 when the question was refused)."""
    a = result.answer if result.answerable else None
    if a is None:
        return {"span_em": 0.0, "span_f1": 0.0, "sentence_f1": 0.0, "shown": False, "wrong_shown": False}
    span = a.span.text if a.span else a.text
    f1 = metrics.cmrc_f1(span, item.golds)
    shown = bool(a.span and a.span.shown)
    return {"span_em": metrics.cmrc_em(span, item.golds), "span_f1": f1,
            "sentence_f1": metrics.cmrc_f1(a.text, item.golds), "shown": shown, "wrong_shown": shown and f1 < 0.5}


def _shown_figures(rows: list[dict]) -> dict[str, float]:
    """Span coverage: the share of answerable questions given a short answer shown as the answer;
    the wrong-short-answer rate: the share of those shown whose CMRC F1 is under 0.5."""
    shown = [r for r in rows if r["shown"]]
    return {"span_coverage": _mean(rows, "shown"), "wrong_short_answer_rate": _mean(shown, "wrong_shown"),
            "shown_short_answers": len(shown)}


def _mean(rows: list[dict], key: str) -> float:
    return round(sum(r[key] for r in rows) / len(rows), 4) if rows else 0.0


def _answer_figures(answered: list[dict]) -> dict[str, float]:
    """The short answer's figures over every answerable question, and over those whose top
    passage holds the answer (the reader's own share of the work), beside the whole sentence;
    ``doc_recall@1``: the top passage comes from the question's own document."""
    top = [r for r in answered if r["top_relevant"]]
    return {
        "span_exact_match": _mean(answered, "span_em"), "span_f1": _mean(answered, "span_f1"),
        "sentence_f1": _mean(answered, "sentence_f1"),
        "span_f1_top_passage": _mean(top, "span_f1"), "sentence_f1_top_passage": _mean(top, "sentence_f1"),
        "top_passage_questions": len(top),
        "doc_recall@1": _mean(answered, "top_document"),
        **_shown_figures(answered),
    }


def _by_type(answered: list[dict]) -> dict:
    """Answer figures per question type (qa.answer_types, or "document" for the document's own facts)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in answered:
        groups[row["result"].question_type].append(row)
    return {t: {"questions": len(rows), "recall@1": _mean([r for r in rows if r["relevant"]], "top_relevant"),
                "answer_accuracy": _mean(rows, "correct"), "span_exact_match": _mean(rows, "span_em"),
                "span_f1": _mean(rows, "span_f1"), **_shown_figures(rows)}
            for t, rows in sorted(groups.items())}


def _by_tag(answered: list[dict], pipeline: list[list[str]]) -> dict:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(answered):
        for tag in row["item"].tags or ("untagged",):
            groups[tag].append(i)
    out = {}
    for tag, idx in sorted(groups.items()):
        m = metrics.retrieval_metrics([pipeline[i] for i in idx], [answered[i]["relevant"] for i in idx])
        out[tag] = {
            "questions": len(idx), "recall@1": m["recall@1"], "recall@5": m["recall@5"], "mrr@10": m["mrr@10"],
            "answer_accuracy": round(sum(answered[i]["correct"] for i in idx) / len(idx), 4),
        }
    return out


def _refused_by_tag(unanswerable: list[dict]) -> dict:
    """How many unanswerable questions of each tag (other-region, detail-absent…) were refused."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for row in unanswerable:
        for tag in row["item"].tags or ("untagged",):
            groups[tag].append(not row["result"].answerable)
    return {tag: {"questions": len(refused), "refused": round(sum(refused) / len(refused), 4)}
            for tag, refused in sorted(groups.items())}


def _misses(rows: list[dict]) -> list[dict]:
    """Questions the pipeline got wrong, with what it returned instead."""
    out = []
    for row in rows:
        item, result = row["item"], row["result"]
        top = result.hits[0] if result.hits else None
        if item.answerable:  # a fact outside every passage needs only the right answer
            ok = row["correct"] and (not row["relevant"] or (top is not None and top.passage_id in row["relevant"]))
        else:
            ok = not result.answerable
        if ok:
            continue
        out.append({
            "id": item.id, "question": item.question, "answerable": item.answerable,
            "expected": item.answer if item.answerable else "(no answer)",
            "relevant": sorted(row.get("relevant", ())),
            "returned": top.passage_id if top else None,
            "returned_answerable": result.answerable,
            "returned_answer": result.answer.text if result.answer else None,
            "returned_span": result.answer.span.text if result.answer and result.answer.span else None,
            "reason": result.reason,
            "returned_section": top.section if top else None,
            "confidence": result.confidence,
        })
    return out


def squad_service(path: Path, settings: Settings, progress: bool, cache: Path) -> tuple[QAService, list[dict]]:
    """A service over a SQuAD file's contexts; the index is cached by file hash and settings."""
    from eval.squad import load_squad

    documents, questions = load_squad(path)
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return _cached_service(documents, cache, f"{path.stem}-{key}", settings, progress), questions


def _cached_service(documents: list, cache: Path, name: str, settings: Settings, progress: bool) -> QAService:
    """A service over an index of ``documents`` kept in ``cache`` under ``name`` and the settings' recipe,
    built the first time it is asked for."""
    from qa.loading import load_service, recipe
    from qa.updates import build

    index_dir = cache / f"{name}-{recipe(settings)}"
    cached = settings.with_(index_dir=index_dir)
    if not (index_dir / "manifest.json").exists():
        log.warning("building an index of %d documents in %s (cached for next time)", len(documents), index_dir)
        build(documents, cached, progress=progress)
    return load_service(cached)


def corpus_service(folder: Path, settings: Settings, progress: bool, cache: Path) -> QAService:
    """A service over a folder of documents, for a labelled set written over it; the index is
    cached by the documents' ids and contents, all that was read of them (text, pages, boxes,
    tables) and the settings, so a changed file, or one read differently by a changed loader,
    rebuilds it."""
    from corpus.documents import CorpusError, load_documents

    try:
        documents = load_documents([folder], settings.read_limits)
    except CorpusError as exc:
        raise DatasetError(str(exc)) from None
    key = hashlib.sha256("\n".join(f"{d.doc_id} {d.sha256} {hashlib.sha256(repr(d).encode()).hexdigest()}"
                                   for d in documents).encode()).hexdigest()[:12]
    return _cached_service(documents, cache, f"{folder.resolve().name}-{key}", settings, progress)


def run(settings: Settings, dataset: Path | None = None, squad: Path | None = None,
        limit: int | None = None, progress: bool = True, cache: Path = ROOT / "var" / "eval-cache",
        style: str = "asked", corpus: Path | None = None, held_out: bool = False,
        kbs: tuple[str, ...] = ()) -> dict:
    """One set's report in one question style (``eval.styles``); with ``corpus``, over an index
    of that folder's documents (built once and cached) instead of the configured index."""
    from qa.kbs import KnowledgeBases
    from qa.loading import load_service

    if style not in STYLES:
        raise DatasetError(f"unknown question style {style!r}; one of {', '.join(STYLES)}")
    if style == "keyword":
        if squad or dataset:
            raise DatasetError("the keyword style is the labelled set's hand-written variant; "
                               "use --style stripped for another set")
        dataset = KEYWORD_DATASET
    if corpus is not None and (squad or not dataset):
        raise DatasetError("--corpus evaluates a labelled set (--dataset FILE) written over that folder's documents")
    if held_out and (not squad or squad.name != CMRC):
        raise DatasetError(f"--held-out keeps the questions of {CMRC} that no learned piece saw; use it with --squad")
    if squad:
        service, questions = squad_service(squad, settings, progress, cache)
        if held_out:
            questions = [q for q in questions if cmrc_part(q["context_index"]) == "report"]
        items = squad_items(service, questions[:limit] if limit else questions)
        name = squad.name + (" (held out)" if held_out else "")
    else:
        path = dataset or DEFAULT_DATASET
        questions = load_jsonl(path)  # a bad file fails before any index is built
        if kbs:  # the first knowledge base's settings are the report's
            service, settings = federation(settings, kbs), KnowledgeBases(settings).settings(kbs[0])
        else:
            service = corpus_service(corpus, settings, progress, cache) if corpus else load_service(settings)
        # asked of several knowledge bases, a set written for one document is about the first one's
        only = getattr(service, "first_document", None)
        items = labelled_items(service, questions[:limit] if limit else questions, only)
        name = path.name
    if style == "stripped":
        items = stripped(items)
    report = evaluate(service, items, name, settings, progress=progress)
    return {"style": style, **report}


def federation(settings: Settings, kbs: tuple[str, ...]):
    """The knowledge bases ``kbs`` asked together, as a server asks them for POST /ask with kbs."""
    from qa.federation import Federation
    from qa.kbs import KnowledgeBases
    from qa.loading import load_service

    store, services = KnowledgeBases(settings), {}
    for kb in dict.fromkeys(kbs):
        services[kb] = load_service(store.settings(kb), previous=next(iter(services.values()), None))
    try:
        return Federation(services)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None


def write_outputs(report: dict, json_out: Path | None, report_dir: Path | None) -> list[Path]:
    """Write the JSON figures and the Markdown report where asked; returns what was written."""
    from eval.report import write_report

    written = []
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
        written.append(json_out)
    if report_dir:
        written.append(write_report(report, report_dir))
    return written
