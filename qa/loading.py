"""Building the service from settings: the one place that wires index, model and settings."""
from __future__ import annotations

import logging
import time

from index import store
from index.models import load_encoder, model_id
from qa.service import QAService
from qa.settings import Settings

log = logging.getLogger(__name__)


def load_service(settings: Settings) -> QAService:
    """Load and verify the index, then the query encoder; raises IndexStoreError or EncoderError."""
    from corpus.tokenize import warm_up

    started = time.perf_counter()
    index = store.load(settings.index_dir, model_id(settings.model), settings.split)
    encoder = load_encoder(settings.model, settings.models_dir, settings.engine)
    warm_up()
    log.info("loaded %d passages and %s in %.2fs", len(index.passages), encoder.model_id, time.perf_counter() - started)
    return QAService(index, encoder, settings)
