"""Which CMRC 2018 trial contexts each learned piece may see (by the context's place in the file).

- ``train``: contexts whose index is not a multiple of 4 train the reader (eval/train_reader.py);
- ``calibrate``: index ≡ 0 (mod 8) fit the short-answer scorer (eval/train_short.py);
- ``report``: index ≡ 4 (mod 8) are seen by neither; ``qa eval --squad … --held-out`` reports on them.
"""
from __future__ import annotations

CMRC = "cmrc2018_trial.json"


def cmrc_part(index: int) -> str:
    if index % 4:
        return "train"
    return "calibrate" if index % 8 == 0 else "report"
