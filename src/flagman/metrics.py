"""Prometheus metrics, fed from finished request records by the log writer.

Each gateway has its own `CollectorRegistry` (no module-level state), and the
metrics are updated off the request path, in the writer's batches.
Names follow Prometheus conventions: `_total` counters, base units (seconds,
USD), `model` = the requested name, `deployment` = the one that answered.
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from flagman.store.base import RequestRecord

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("flagman_requests", "Client requests, by outcome",
                                ["model", "deployment", "status"], registry=r)
        self.errors = Counter("flagman_errors", "Client requests that ended in an error",
                              ["model", "error_class"], registry=r)
        self.attempts = Counter("flagman_upstream_attempts", "Upstream attempts",
                                ["deployment", "outcome"], registry=r)
        self.latency = Histogram("flagman_request_duration_seconds", "Whole request latency",
                                 ["deployment"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("flagman_time_to_first_token_seconds", "Streams: time to first token",
                              ["deployment"], buckets=LATENCY_BUCKETS, registry=r)
        self.overhead = Histogram("flagman_overhead_seconds", "Time spent in flagman itself",
                                  buckets=OVERHEAD_BUCKETS, registry=r)
        self.tokens = Counter("flagman_tokens", "Tokens", ["deployment", "kind"], registry=r)
        self.cost = Counter("flagman_cost_usd", "Cost in USD", ["model", "deployment"],
                            registry=r)
        self.reloads = Counter("flagman_config_reloads", "Config reloads", ["result"],
                               registry=r)

    def observe(self, records: list[RequestRecord]) -> None:
        # Sum counters over the batch first: one labels().inc() per label set, not per record.
        sums: defaultdict[tuple[Counter, tuple[str, ...]], float] = defaultdict(float)
        for rec in records:
            dep = rec.deployment or ""
            # Only names that routed become label values: clients cannot blow up cardinality.
            model = rec.requested_model if rec.group_name is not None else "(unknown)"
            sums[(self.requests, (model, dep, str(rec.status)))] += 1
            if rec.error_class:
                sums[(self.errors, (model, rec.error_class))] += 1
            for a in rec.attempts:
                sums[(self.attempts, (a["deployment"], a["error_class"] or "ok"))] += 1
            sums[(self.tokens, (dep, "prompt"))] += rec.prompt_tokens
            sums[(self.tokens, (dep, "completion"))] += rec.completion_tokens
            sums[(self.cost, (model, dep))] += rec.cost_usd
            self.latency.labels(dep).observe(rec.latency_ms / 1000)
            if rec.ttft_ms is not None:
                self.ttft.labels(dep).observe(rec.ttft_ms / 1000)
            self.overhead.observe(rec.overhead_ms / 1000)
        for (metric, labels), value in sums.items():
            if value:
                metric.labels(*labels).inc(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
