"""Prometheus metrics of one app, in a registry of its own (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The server's metrics. ``outcome`` is the answer's status (``answered``, ``rejected``,
    ``failed``) for requests the agent answered, or why the server refused or dropped one
    (``unauthorized``, ``forbidden``, ``rate_limited``, ``queue_full``, ``too_large``,
    ``invalid``, ``timeout``, ``unavailable``, ``error``). The ``service`` gauges are the
    counts of all replicas together, as Redis last reported them to this one (0 without
    service-wide admission)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sqlagent_http_requests",
            "API requests by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sqlagent_http_request_duration_seconds",
            "Time from request to response, by endpoint.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.agent_latency = Histogram(
            "sqlagent_agent_duration_seconds",
            "Time inside the agent (retrieval, model, validation, execution, audit), by status.",
            ["status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rejections = Counter(
            "sqlagent_rejections",
            "Violations in rejected answers, by violation code.",
            ["code"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "sqlagent_queue_depth",
            "Requests waiting for an agent slot.",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "sqlagent_in_flight",
            "Requests inside the agent now.",
            registry=self.registry,
        )
        self.service_queue_depth = Gauge(
            "sqlagent_service_queue_depth",
            "Requests of all replicas waiting for a service-wide slot.",
            registry=self.registry,
        )
        self.service_in_flight = Gauge(
            "sqlagent_service_in_flight",
            "Requests inside the agents of all replicas (service-wide slots taken).",
            registry=self.registry,
        )
        self.ready = Gauge(
            "sqlagent_ready",
            "1 when the last readiness check passed.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
