"""Fair under load: each client's share of questions (token bucket, 429 + Retry-After) and
the encoder queue serving clients in turn."""
from __future__ import annotations

import itertools

from fastapi.testclient import TestClient
from hypothesis import given, settings as hsettings, strategies as st

from api.app import create_app
from api.ratelimit import MAX_HOLD_S, TokenBuckets, client_name
from qa.batching import _Lane, _Request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 0.5  # one token comes every half second
    assert buckets.take("b") == 0  # another client has a bucket of its own
    clock.now += 0.25
    assert buckets.take("a") == 0.25  # a refusal spends nothing
    clock.now += 0.25
    assert buckets.take("a") == 0 and buckets.take("a") == 0.5
    clock.now += 100
    assert [buckets.take("a") for _ in range(4)] == [0, 0, 0, 0.5]  # refilled to the burst, no more


@hsettings(max_examples=200, deadline=None)
@given(rate=st.floats(0.5, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 2, allow_nan=False), min_size=1, max_size=200))
def test_no_client_gets_more_than_burst_plus_rate_times_time(rate, burst, gaps):
    clock = Clock()
    buckets = TokenBuckets(rate, burst, clock)
    start, allowed = clock.now, 0
    for gap in gaps:
        clock.now += gap
        wait = buckets.take("c")
        assert wait >= 0
        allowed += wait == 0
        assert allowed <= burst + rate * (clock.now - start) + 1e-9
        if wait:  # the wait it names is enough, and needed
            clock.now += wait
            assert buckets.take("c") == 0
            allowed += 1


def test_the_table_of_clients_is_bounded():
    buckets = TokenBuckets(1, 1, Clock(), max_clients=5)
    for n in range(50):
        buckets.take(f"addr:{n}")
    assert len(buckets) == 5


def _scope(headers: dict[str, str], address: str = "10.0.0.7") -> dict:
    return {"type": "http", "client": (address, 5000),
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}


def test_a_client_is_its_configured_key_else_its_address():
    keys = ("k-one", "k-two")
    assert client_name(_scope({"authorization": "Bearer k-two"}), keys) == "key:1"
    assert client_name(_scope({"x-api-key": "k-one"}), keys) == "key:0"
    # an invented key is the address's share: inventing keys buys nothing
    assert client_name(_scope({"authorization": "Bearer made-up"}), keys) == "addr:10.0.0.7"
    assert client_name(_scope({}), ()) == "addr:10.0.0.7"
    assert "k-two" not in client_name(_scope({"authorization": "Bearer k-two"}), keys)


def test_over_http_a_client_beyond_its_share_gets_429_and_others_do_not(real_settings, service):
    clock = Clock()
    settings = real_settings.with_(rate_per_s=8, rate_burst=2, api_keys=("alice", "bob"))
    with TestClient(create_app(settings, service=service, clock=clock)) as http:
        alice, bob = ({"authorization": f"Bearer {k}"} for k in ("alice", "bob"))
        ask = {"question": "我国社会保障体系包括哪些方面？"}
        assert [http.post("/ask", json=ask, headers=alice).status_code for _ in range(2)] == [200, 200]
        refused = http.post("/ask", json=ask, headers=alice)
        assert refused.status_code == 429
        # held until its token was due, so nothing is left to wait (whole seconds, as HTTP says)
        assert refused.headers["retry-after"] == "0"
        assert "at most 8 a second" in refused.json()["detail"]
        assert http.get("/search", params={"q": "养老"}, headers=alice).status_code == 429  # one share for both
        assert http.post("/ask", json=ask, headers=bob).status_code == 200
        assert http.get("/health").status_code == 200  # only questions are counted
        clock.now += 1 / 8
        assert http.post("/ask", json=ask, headers=alice).status_code == 200
    assert MAX_HOLD_S <= 1


def _requests(who_tokens: list[tuple[str, int]]) -> list[tuple[str, _Request]]:
    seq = itertools.count()
    return [(who, _Request(tokens, next(seq), f"{who}{n}", 0.0)) for n, (who, tokens) in enumerate(who_tokens)]


def test_clients_take_turns_within_a_batch():
    lane = _Lane()
    for who, request in _requests([("flood", 10)] * 20 + [("quiet", 10)]):
        lane.push(who, request)
    first = lane.take(max_batch=4, batch_tokens=1000)
    assert [r.text for r in first] == ["flood0", "quiet20", "flood1", "flood2"]
    # the clients just served go to the back of the order; only the flooder is left
    assert [r.text for r in lane.take(4, 1000)] == ["flood3", "flood4", "flood5", "flood6"]
    assert len(lane) == 13


def test_turns_respect_the_token_budget_and_fewest_tokens_first():
    lane = _Lane()
    for who, request in _requests([("a", 30), ("a", 5), ("b", 60), ("c", 20)]):
        lane.push(who, request)
    # a's shortest first; b's 60 would pass the budget and is passed over; c's 20 fits; then a's 30
    assert [r.text for r in lane.take(max_batch=10, batch_tokens=60)] == ["a1", "c3", "a0"]
    assert [r.text for r in lane.take(10, 60)] == ["b2"]
    assert not lane


@hsettings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(1, 64)), min_size=1, max_size=60),
       st.integers(1, 32))
def test_every_request_is_served_once(entries, max_batch):
    lane = _Lane()
    requests = _requests(entries)
    for who, request in requests:
        lane.push(who, request)
    served = []
    while lane:
        batch = lane.take(max_batch, 128)
        assert 1 <= len(batch) <= max_batch
        assert len(batch) == 1 or sum(r.tokens for r in batch) <= 128
        served += batch
    assert sorted(r.seq for r in served) == [r.seq for _, r in requests]
