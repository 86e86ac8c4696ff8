"""Prometheus metrics for one app: requests, latency per stage, refusals, reloads, the index and the queue.

Each app has its own ``CollectorRegistry`` (tests build many apps in one process).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

from qa.types import Result

# Seconds; a question takes ~20 ms on the article and ~40 ms at 100,000 passages.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class Metrics:
    CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the text format every Prometheus version reads

    def __init__(self, current_service: Callable[[], object | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("qa_http_requests", "HTTP requests answered, by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("qa_http_request_duration_seconds", "Time to answer an HTTP request, by route",
                                 ["route"], buckets=REQUEST_BUCKETS, registry=r)
        self.in_progress = Gauge("qa_http_requests_in_progress", "Requests being answered now (not /metrics)",
                                 registry=r)
        self.stages = Histogram("qa_stage_duration_seconds", "Time of each stage of answering a question",
                                ["stage"], buckets=STAGE_BUCKETS, registry=r)
        self.questions = Counter("qa_questions", "Questions answered, by verdict", ["answerable"], registry=r)
        self.refusals = Counter("qa_refusals", "Questions refused: no passage answered well enough", registry=r)
        self.reloads = Counter("qa_reloads", "Index reloads that succeeded", registry=r)
        self.reload_failures = Counter("qa_reload_failures", "Index reloads that failed (the old index kept serving)",
                                       registry=r)
        r.register(_ServiceCollector(current_service))

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        # Every label takes few values whatever clients send: a made-up method is "other", a
        # path no route matches is "unmatched" (api.middleware.route_label), a status is a status.
        self.requests.labels(route, method if method in METHODS else "other", str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def result(self, result: Result) -> None:
        for stage, ms in result.timings_ms.items():
            self.stages.labels(stage).observe(ms / 1000)
        self.questions.labels(str(result.answerable).lower()).inc()
        if not result.answerable:
            self.refusals.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)


class _ServiceCollector(Collector):
    """Read at scrape time, so a reload shows at once: the index being served and the encoder queue."""

    def __init__(self, current_service: Callable[[], object | None]) -> None:
        self.current_service = current_service

    def describe(self) -> list[Metric]:
        return []  # values depend on what is loaded at scrape time

    def collect(self) -> Iterator[Metric]:
        service = self.current_service()
        if service is None:
            return
        info = service.info()
        labels = GaugeMetricFamily("qa_index_info", "The index being served (value 1)",
                                   labels=["model", "build_id", "built_at", "dense_kind"])
        labels.add_metric([info.model, info.build_id, info.built_at, info.dense_kind], 1)
        yield labels
        yield GaugeMetricFamily("qa_index_documents", "Documents in the index", value=info.documents)
        yield GaugeMetricFamily("qa_index_passages", "Passages in the index", value=info.passages)
        yield GaugeMetricFamily("qa_index_sentences", "Sentences in the index", value=info.sentences)
        depth = service.queue_depth()
        if depth is not None:
            yield GaugeMetricFamily("qa_encoder_queue_depth", "Questions waiting for the query encoder",
                                    value=depth)
