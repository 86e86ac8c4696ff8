"""Markdown and plain text: strict UTF-8, stored as it is."""
from __future__ import annotations

from corpus.formats import BINARY, CONTENT, Extracted, FormatError, Limits, TooBig, sniff


def decode(raw: bytes) -> str:
    """``raw`` as UTF-8 text; refuse binary data, other encodings and a byte-order mark."""
    found = sniff(raw)
    if found in BINARY:
        raise FormatError(f"looks like {CONTENT[found]}, not UTF-8 text; give it its own extension")
    if b"\0" in raw:
        raise FormatError("looks like a binary file, not UTF-8 text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"not valid UTF-8 (byte {exc.start}); convert it to UTF-8 first") from None
    if text.startswith("\ufeff"):
        raise FormatError("starts with a byte-order mark; save it as UTF-8 without BOM")
    if not text.strip():
        raise FormatError("file is empty")
    return text


def extract(raw: bytes, kind: str, limits: Limits = Limits()) -> Extracted:
    if len(raw) > 4 * limits.chars:  # UTF-8 spends at most 4 bytes a character: over it before decoding
        raise TooBig(f"{len(raw):,} bytes is more than {limits.chars:,} characters of text can be; "
                     "the limit is QA_MAX_DOCUMENT_CHARS")
    return Extracted(decode(raw), kind)  # its characters are counted by corpus.formats.extract
