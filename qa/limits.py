"""What one request may ask for: the one source of these numbers for the service, API and CLI."""
from __future__ import annotations

DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MAX_QUESTION_CHARS = 500
MAX_BODY_BYTES = 16 * 1024  # a JSON question needs well under 2 KiB; 16 KiB leaves room for escapes
