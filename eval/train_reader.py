"""Train the extractive reader (qa/reader.py) on the shared public QA sets.

    .venv/bin/python -m eval.train_reader            # the shipped weights (seed 0)

Data, all from ../shared/data/ and nothing else:
- training: drcd_dev.json, drcd_test.json (Traditional, mapped to Simplified character by
  character with OpenCC so offsets stay put) and the CMRC 2018 trial contexts whose index
  is not a multiple of 4;
- validation only: the CMRC 2018 trial contexts whose index is a multiple of 4 (about a
  quarter of its questions) and never regs_dev.jsonl or the article's labelled set.

Each question gives a 250-character window of its context holding the answer at a random
place; about a third of the questions also give a negative, a window of the same context
(or of a sibling paragraph of the same article) without the answer, trained towards the
first token (no answer).  The first ``--layers`` layers of multilingual-e5-small are tuned
with the word embeddings frozen; what ships is every other parameter in fp16 (about
21 MB for six layers) beside a JSON of the settings, the data and the figures reached.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.metrics import cmrc_em, cmrc_f1
from eval.splits import cmrc_part
from qa.reader import MAX_TOKENS, WEIGHTS, Tokens, best_spans, build_net, checkpoint_names, tuned, word_embeddings

log = logging.getLogger(__name__)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL = Path(__file__).resolve().parents[1] / "models" / "multilingual-e5-small"
WINDOW = 250


@dataclass(frozen=True)
class Example:
    question: str
    text: str
    answers: tuple[str, ...]  # empty: no answer in this text
    start: int = -1  # the first answer's character offsets in text
    end: int = -1


def simplified():
    """A character-for-character Traditional → Simplified map (offsets never move)."""
    from opencc import OpenCC

    cc = OpenCC("t2s")
    cache: dict[str, str] = {}

    def convert(text: str) -> str:
        out = []
        for ch in text:
            if ch not in cache:
                c = cc.convert(ch)
                cache[ch] = c if len(c) == 1 else ch
            out.append(cache[ch])
        return "".join(out)

    return convert


def squad(path: Path, convert=None):
    """(article index, context, [(question, [(answer, start)])]) per paragraph."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    for a, article in enumerate(data):
        for para in article["paragraphs"]:
            ctx = para["context"]
            qas = []
            for qa in para["qas"]:
                answers = [(x["text"], int(x["answer_start"])) for x in qa["answers"]]
                answers = [(t, s) for t, s in answers if t and ctx[s: s + len(t)] == t]
                if answers:
                    qas.append((qa["question"], answers))
            if convert:
                ctx = convert(ctx)
                qas = [(convert(q), [(convert(t), s) for t, s in ans]) for q, ans in qas]
            yield a, ctx, qas


def window_with(ctx: str, start: int, end: int, rng: random.Random) -> tuple[int, int]:
    if len(ctx) <= WINDOW:
        return 0, len(ctx)
    lo = max(0, end - WINDOW)
    hi = min(start, len(ctx) - WINDOW)
    a = rng.randint(lo, max(lo, hi))
    return a, min(len(ctx), a + WINDOW)


def window_without(ctx: str, answers: list[str], rng: random.Random) -> tuple[int, int] | None:
    for _ in range(6):
        a = rng.randint(0, max(0, len(ctx) - WINDOW))
        text = ctx[a: a + WINDOW]
        if len(text) >= 40 and not any(t in text for t in answers):
            return a, a + len(text)
    return None


def examples(paragraphs, rng: random.Random, negatives: float) -> list[Example]:
    paragraphs = list(paragraphs)
    by_article: dict[int, list[str]] = {}
    for a, ctx, _ in paragraphs:
        by_article.setdefault(a, []).append(ctx)
    out: list[Example] = []
    for a, ctx, qas in paragraphs:
        for q, answers in qas:
            text, s = answers[0]
            lo, hi = window_with(ctx, s, s + len(text), rng)
            golds = tuple(t for t, st in answers if lo <= st and st + len(t) <= hi)
            out.append(Example(q, ctx[lo:hi], golds, s - lo, s - lo + len(text)))
            if rng.random() < negatives:
                pool = [c for c in by_article[a] if c is not ctx] if rng.random() < 0.5 else []
                source = rng.choice(pool) if pool else ctx
                w = window_without(source, [t for t, _ in answers], rng)
                if w:
                    out.append(Example(q, source[w[0]: w[1]], ()))
    return out


def held_out(seed: int) -> list[Example]:
    """The validation windows: CMRC contexts the reader never trains on, a third with a negative."""
    cmrc = list(squad(SHARED / "cmrc2018_trial.json"))
    held = [p for i, p in enumerate(cmrc) if cmrc_part(i) != "train"]
    return examples(held, random.Random(seed + 1), negatives=0.3)


def load(seed: int, negatives: float) -> tuple[list[Example], list[Example]]:
    rng = random.Random(seed)
    convert = simplified()
    cmrc = list(squad(SHARED / "cmrc2018_trial.json"))
    train_paras = [p for i, p in enumerate(cmrc) if cmrc_part(i) == "train"]
    for name in ("drcd_dev.json", "drcd_test.json"):
        train_paras += [(a + 10_000 * (name == "drcd_test.json") + 1000, c, q)
                        for a, c, q in squad(SHARED / name, convert)]
    return examples(train_paras, rng, negatives), held_out(seed)


def encode(tokens: Tokens, ex: Example):
    ids, spans = tokens.pair(ex.question, ex.text)
    s = e = 0
    if ex.answers:
        inside = [i for i, sp in enumerate(spans) if sp and sp[0] < ex.end and sp[1] > ex.start]
        if not inside:
            return None  # truncated away
        s, e = inside[0], inside[-1]
    return ids, s, e, spans


def batches(items, size: int, rng: random.Random):
    order = list(range(len(items)))
    rng.shuffle(order)
    for i in range(0, len(order), size):
        yield [items[j] for j in order[i: i + size]]


def pad(torch, words, chunk):
    n = max(len(c[0]) for c in chunk)
    ids = np.ones((len(chunk), n), np.int64)
    mask = np.zeros((len(chunk), n), np.float32)
    for r, c in enumerate(chunk):
        ids[r, : len(c[0])] = c[0]
        mask[r, : len(c[0])] = 1
    w = torch.from_numpy(np.asarray(words[ids.reshape(-1)]).reshape(len(chunk), n, -1))
    return w, torch.from_numpy(mask)


def evaluate(torch, net, words, tokens: Tokens, valid: list[Example]) -> dict:
    """Char-F1 and EM of the best span where the window holds the answer; the no-answer
    decision's accuracy at margin 0 over all windows."""
    net.eval()
    f1 = em = 0.0
    answerable = 0
    null_right = 0
    with torch.inference_mode():
        for i in range(0, len(valid), 32):
            chunk = valid[i: i + 32]
            enc = [tokens.pair(ex.question, ex.text) for ex in chunk]
            w, m = pad(torch, words, [(ids,) for ids, _ in enc])
            start, end = net(w, m)
            for r, ex in enumerate(chunk):
                ids, spans = enc[r]
                k = len(ids)
                best = best_spans(start[r, :k].numpy(), end[r, :k].numpy(), spans, n=1)
                null = float(start[r, 0] + end[r, 0])
                has = bool(best) and best[0].score > null
                if ex.answers:
                    answerable += 1
                    pred = ex.text[best[0].start: best[0].end] if best else ""
                    f1 += cmrc_f1(pred, ex.answers)
                    em += cmrc_em(pred, ex.answers)
                null_right += has == bool(ex.answers)
    net.train()
    return {"char_f1": round(f1 / answerable, 4), "em": round(em / answerable, 4),
            "no_answer_accuracy": round(null_right / len(valid), 4),
            "answerable": answerable, "windows": len(valid)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--tune-from", type=int, default=6,
                    help="layers below this one stay as in the base model (frozen, and not shipped)")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--negatives", type=float, default=0.35)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    ap.add_argument("--limit", type=int, default=0, help="train on the first N examples (a smoke run)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    import torch
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import save_file

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    train, valid = load(args.seed, args.negatives)
    if args.limit:
        train = train[: args.limit]
    tokens = Tokens(MODEL, MAX_TOKENS)
    words = word_embeddings(MODEL)
    encoded = [c for c in (encode(tokens, ex) for ex in train) if c]
    log.info("training on %d windows (%d with an answer), validating on %d",
             len(encoded), sum(1 for ex in train if ex.answers), len(valid))

    net = build_net(args.layers)
    base = load_np(str(MODEL / "model.safetensors"))
    names = checkpoint_names(args.layers)
    state = net.state_dict()
    for ours, theirs in names.items():
        state[ours] = torch.from_numpy(np.array(base[theirs]))
    net.load_state_dict(state)
    del base
    for name, p in net.named_parameters():
        p.requires_grad_(tuned(name, args.tune_from))
    head = [p for n, p in net.named_parameters() if n.startswith("head.")]
    body = [p for n, p in net.named_parameters() if not n.startswith("head.") and p.requires_grad]
    decay = lambda ps: [p for p in ps if p.dim() > 1]  # noqa: E731
    flat = lambda ps: [p for p in ps if p.dim() <= 1]  # noqa: E731
    opt = torch.optim.AdamW([
        {"params": decay(body), "lr": args.lr, "weight_decay": 0.01},
        {"params": flat(body), "lr": args.lr, "weight_decay": 0.0},
        {"params": head, "lr": args.head_lr, "weight_decay": 0.0}])
    steps = math.ceil(len(encoded) / args.batch * args.epochs)
    warm = min(100, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / warm if t < warm else max(0.0, (steps - t) / max(1, steps - warm)))
    log.info("%d steps", steps)
    net.train()
    step, t0, history = 0, time.time(), []
    loss_f = torch.nn.CrossEntropyLoss()
    while step < steps:
        for chunk in batches(encoded, args.batch, rng):
            w, m = pad(torch, words, chunk)
            start, end = net(w, m)
            neg = (1.0 - m) * -1e4
            s_gold = torch.tensor([c[1] for c in chunk])
            e_gold = torch.tensor([c[2] for c in chunk])
            loss = (loss_f(start + neg, s_gold) + loss_f(end + neg, e_gold)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
            if step % 50 == 0:
                log.info("step %d/%d loss %.3f (%.0f s)", step, steps, loss.item(), time.time() - t0)
            if step % 400 == 0 or step == steps:
                figures = evaluate(torch, net, words, tokens, valid)
                figures["step"] = step
                history.append(figures)
                log.info("validation %s", figures)
                save(save_file, net, args, figures, history, len(encoded), time.time() - t0)
            if step >= steps:
                break


def save(save_file, net, args, figures, history, windows, seconds) -> None:
    state = {k: v.detach().half().contiguous() for k, v in net.state_dict().items() if tuned(k, args.tune_from)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out))
    meta = {"layers": args.layers, "tuned_from": args.tune_from, "max_tokens": MAX_TOKENS, "window_chars": WINDOW,
            "seed": args.seed, "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
            "head_lr": args.head_lr, "negatives": args.negatives, "training_windows": windows,
            "data": {"train": ["drcd_dev.json (t2s)", "drcd_test.json (t2s)",
                               "cmrc2018_trial.json contexts i % 4 != 0"],
                     "validation": "cmrc2018_trial.json contexts i % 4 == 0"},
            "validation": figures, "history": history, "train_seconds": round(seconds)}
    args.out.with_suffix(".json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n",
                                             encoding="utf-8")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
