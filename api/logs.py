"""Log lines that carry the request id, as text or as one JSON object per line (``QA_LOG_FORMAT``)."""
from __future__ import annotations

import json
import logging
import logging.config
from contextvars import ContextVar
from datetime import datetime, timezone

# Set by the request middleware for the whole request, including the thread-pool work it
# starts (Starlette copies the context into the worker thread).
request_id: ContextVar[str] = ContextVar("request_id", default="-")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request_id, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", request_id.get()),
            "message": record.getMessage(),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send every logger (the service's, uvicorn's) through one stderr handler in ``log_format``."""
    formatter = {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                 "formatter": "default", "filters": ["request_id"]}},
        "root": {"handlers": ["default"], "level": level},
        # uvicorn's own loggers reach the same handler through the root
        "loggers": {**{name: {"level": level, "handlers": [], "propagate": True}
                       for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
                    # which CPU build faiss picked, in eight lines at every start: only its warnings
                    "faiss": {"level": logging.WARNING}},
    })
