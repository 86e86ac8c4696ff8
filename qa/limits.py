"""What one request may ask for: the one source of these numbers for the service, API and CLI."""
from __future__ import annotations

DEFAULT_TOP_K = 5
MAX_TOP_K = 50
MAX_DOC_FILTER = 100  # documents one question may name (doc_id as a list)
MAX_KBS_ASKED = 20  # knowledge bases one question may name (POST /ask's kbs)
MAX_QUESTION_CHARS = 500
MAX_BODY_BYTES = 16 * 1024  # a JSON question needs well under 2 KiB; 16 KiB leaves room for escapes
# POST /admin/files: paths or ids of each kind in one request, and its body limit
# (100 × 1,024 characters + 100 × 200, each at most 12 bytes, 𠀀 escaped as a surrogate pair, < 2 MiB).
LOCAL_ITEMS = 100
LOCAL_BODY_BYTES = 2 * 1024 * 1024
