"""The extractive reader: which characters of a passage answer the question, and whether any do.

A small BERT (the first ``layers`` layers of the bundled multilingual-e5-small, fine-tuned
by ``eval/train_reader.py`` on the shared public QA sets) reads "question + passage" and
scores every token as the start and the end of the answer; the first token's scores are
the no-answer score.  torch lives here and in index/st_encoder.py only.

The network is written out (about forty lines) instead of loading transformers' BertModel:
importing transformers costs about a second of cold start, and the same module trains
and serves, so the two can never disagree.  The word-embedding matrix (96 M of the 118 M
parameters) is frozen during training and never shipped: it is read row by row from the
prepared model folder through a memory map, so serving touches only the rows it uses.
"""
from __future__ import annotations

import json
import logging
import math
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).with_name("data") / "reader.safetensors"
MAX_TOKENS = 192  # question + a 250-character passage fit in about 190 tokens
MAX_ANSWER_TOKENS = 30
HIDDEN, HEADS, FFN = 384, 12, 1536
_EPS = 1e-12


@dataclass(frozen=True)
class Span:
    """One candidate answer: character offsets into the passage text and its score."""

    start: int
    end: int
    score: float  # start logit + end logit


@dataclass(frozen=True)
class Reading:
    """What the reader made of one passage: its best spans, best first, and the
    no-answer score (the first token's start + end logits)."""

    spans: tuple[Span, ...]
    null_score: float
    starts: tuple[float, ...] = ()  # every token's start and end logit, and its characters
    ends: tuple[float, ...] = ()
    tokens: tuple[tuple[int, int] | None, ...] = ()

    def score_of(self, start: int, end: int) -> float | None:
        """The reader's score for the characters ``[start, end)``: the logits of the tokens
        holding its first and last characters; None when the passage was cut before it."""
        first = next((i for i, t in enumerate(self.tokens) if t and t[0] <= start < t[1]), None)
        last = next((i for i, t in enumerate(self.tokens) if t and t[0] < end <= t[1]), None)
        if first is None or last is None or last < first:
            return None
        return self.starts[first] + self.ends[last]

    def shifted(self, offset: int) -> "Reading":
        """The same reading with character offsets moved by ``offset`` (a window read from a longer text)."""
        move = lambda t: None if t is None else (t[0] + offset, t[1] + offset)  # noqa: E731
        return Reading(tuple(Span(x.start + offset, x.end + offset, x.score) for x in self.spans), self.null_score,
                       self.starts, self.ends, tuple(move(t) for t in self.tokens))

    @property
    def margin(self) -> float:
        """How much more the best span scores than no answer (negative: rather none)."""
        return (self.spans[0].score if self.spans else -math.inf) - self.null_score


def word_embeddings(model_dir: Path) -> np.ndarray:
    """The model folder's word-embedding matrix as a read-only memory map (no copy)."""
    path = Path(model_dir) / "model.safetensors"
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    entry = header["embeddings.word_embeddings.weight"]
    if entry["dtype"] != "F32":
        raise ValueError(f"{path}: word embeddings are {entry['dtype']}, expected F32")
    begin, end = entry["data_offsets"]
    rows, dim = entry["shape"]
    assert end - begin == rows * dim * 4
    return np.memmap(path, dtype=np.float32, mode="r", offset=8 + size + begin, shape=(rows, dim))


def _torch():
    import torch

    return torch


def build_net(layers: int):
    """The reader network: BERT embeddings (without the word matrix), ``layers`` encoder
    layers and a start/end head.  Parameter names follow the e5 checkpoint's."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(HIDDEN, HIDDEN) for _ in range(4))
            self.ln1 = nn.LayerNorm(HIDDEN, eps=_EPS)
            self.ffn_in, self.ffn_out = nn.Linear(HIDDEN, FFN), nn.Linear(FFN, HIDDEN)
            self.ln2 = nn.LayerNorm(HIDDEN, eps=_EPS)
            self.drop = nn.Dropout(0.1)

        def forward(self, x, bias):
            b, n, _ = x.shape
            split = lambda t: t.view(b, n, HEADS, HIDDEN // HEADS).transpose(1, 2)  # noqa: E731
            drop = self.drop.p if self.training else 0.0
            a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)),
                                               attn_mask=bias, dropout_p=drop)
            x = self.ln1(x + self.drop(self.o(a.transpose(1, 2).reshape(b, n, HIDDEN))))
            return self.ln2(x + self.drop(self.ffn_out(F.gelu(self.ffn_in(x)))))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.position = nn.Embedding(512, HIDDEN)
            self.token_type = nn.Embedding(2, HIDDEN)
            self.ln = nn.LayerNorm(HIDDEN, eps=_EPS)
            self.layers = nn.ModuleList(Layer() for _ in range(layers))
            self.head = nn.Linear(HIDDEN, 2)
            self.drop = nn.Dropout(0.1)

        def forward(self, words, mask):
            """``words``: looked-up word embeddings (batch, tokens, 384); ``mask``: 1 for
            real tokens.  Returns start and end logits (batch, tokens)."""
            n = words.shape[1]
            x = words + self.position.weight[:n] + self.token_type.weight[0]
            x = self.drop(self.ln(x))
            bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * -1e4
            for layer in self.layers:
                x = layer(x, bias)
            start, end = self.head(x).unbind(-1)
            return start, end

    return Net()


# The e5 checkpoint's names for the parameters build_net() shares with it.
def checkpoint_names(layers: int) -> dict[str, str]:
    names = {"position.weight": "embeddings.position_embeddings.weight",
             "token_type.weight": "embeddings.token_type_embeddings.weight",
             "ln.weight": "embeddings.LayerNorm.weight", "ln.bias": "embeddings.LayerNorm.bias"}
    parts = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "o": "attention.output.dense", "ln1": "attention.output.LayerNorm",
             "ffn_in": "intermediate.dense", "ffn_out": "output.dense", "ln2": "output.LayerNorm"}
    for i in range(layers):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return names


def tuned(name: str, tune_from: int) -> bool:
    """Whether parameter ``name`` of build_net() is trained (and shipped) or kept from the base model."""
    if name.startswith("head."):
        return True
    return name.startswith("layers.") and int(name.split(".")[1]) >= tune_from


def base_weights(model_dir: Path, layers: int, tune_from: int) -> dict:
    """The parameters build_net() keeps from the base model, read from its checkpoint."""
    from safetensors import safe_open

    names = {ours: theirs for ours, theirs in checkpoint_names(layers).items() if not tuned(ours, tune_from)}
    with safe_open(str(Path(model_dir) / "model.safetensors"), framework="pt") as fh:
        return {ours: fh.get_tensor(theirs) for ours, theirs in names.items()}


class Tokens:
    """The model folder's tokenizer for "question + passage" pairs, with character offsets."""

    def __init__(self, model_dir: Path, max_tokens: int = MAX_TOKENS) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_tokens, strategy="only_second")
        self.max_tokens = max_tokens

    def pair(self, question: str, passage: str) -> tuple[list[int], list[tuple[int, int] | None]]:
        """Token ids of the pair, and for each token its character span in ``passage``
        (None for the question's tokens and the special tokens)."""
        enc = self._tok.encode(question, passage)
        spans: list[tuple[int, int] | None] = []
        for seq, (a, b) in zip(enc.sequence_ids, enc.offsets):
            spans.append((a, b) if seq == 1 and b > a else None)
        return list(enc.ids), spans


def best_spans(start: np.ndarray, end: np.ndarray, spans: Sequence[tuple[int, int] | None],
               n: int = 5, max_tokens: int = MAX_ANSWER_TOKENS) -> list[Span]:
    """The ``n`` best non-overlapping-at-the-start spans (start ≤ end ≤ start + max_tokens)
    over passage tokens, as character offsets, best first."""
    ok = np.array([s is not None for s in spans])
    if not ok.any():
        return []
    s = np.where(ok, start, -np.inf)
    e = np.where(ok, end, -np.inf)
    m = len(spans)
    # score[i, j] = s[i] + e[j] for i ≤ j < i + max_tokens
    i = np.arange(m)[:, None]
    j = np.arange(m)[None, :]
    score = s[:, None] + e[None, :]
    score = np.where((j >= i) & (j < i + max_tokens), score, -np.inf)
    flat = np.argsort(score, axis=None)[::-1]
    out: list[Span] = []
    seen: set[tuple[int, int]] = set()
    for idx in flat[: 4 * n + 8]:
        a, b = divmod(int(idx), m)
        if not np.isfinite(score[a, b]):
            break
        key = (spans[a][0], spans[b][1])
        if key in seen:
            continue
        seen.add(key)
        out.append(Span(key[0], key[1], float(score[a, b])))
        if len(out) == n:
            break
    return out


class Reader:
    """The shipped reader, loaded once; ``read`` is safe to call from several threads."""

    def __init__(self, model_dir: Path, weights: Path = WEIGHTS) -> None:
        torch = _torch()
        from safetensors.torch import load_file

        state = load_file(str(weights))
        meta = json.loads(Path(weights).with_suffix(".json").read_text(encoding="utf-8"))
        self.layers = int(meta["layers"])
        self.meta = meta
        self._net = build_net(self.layers)
        frozen = base_weights(model_dir, self.layers, int(meta.get("tuned_from", 0)))
        self._net.load_state_dict(frozen | {k: v.float() for k, v in state.items()})
        self._net.eval()
        self._words = word_embeddings(model_dir)
        self._tokens = Tokens(model_dir, int(meta.get("max_tokens", MAX_TOKENS)))
        self._torch = torch
        self._lock = threading.Lock()  # one forward at a time: two would fight over the cores

    def logits(self, question: str, passages: Sequence[str]):
        """Start/end logits and token spans for each passage, in one padded batch."""
        torch = self._torch
        pairs = [self._tokens.pair(question, p) for p in passages]
        n = max(len(ids) for ids, _ in pairs)
        ids = np.ones((len(pairs), n), np.int64)  # 1 is the pad id
        mask = np.zeros((len(pairs), n), np.float32)
        for r, (row, _) in enumerate(pairs):
            ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        words = torch.from_numpy(np.asarray(self._words[ids.reshape(-1)]).reshape(len(pairs), n, HIDDEN))
        with self._lock, torch.inference_mode():
            start, end = self._net(words, torch.from_numpy(mask))
        return start.numpy(), end.numpy(), [spans for _, spans in pairs]

    def read(self, question: str, passages: Sequence[str], n: int = 5) -> list[Reading]:
        if not passages:
            return []
        start, end, spans = self.logits(question, passages)
        out = []
        for r, sp in enumerate(spans):
            k = len(sp)
            out.append(Reading(tuple(best_spans(start[r, :k], end[r, :k], sp, n)),
                               float(start[r, 0] + end[r, 0]), tuple(start[r, :k].tolist()),
                               tuple(end[r, :k].tolist()), tuple(sp)))
        return out
