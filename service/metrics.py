"""Prometheus metrics, each `Metrics` with its own `CollectorRegistry` (no process-global state).

Names follow Prometheus conventions: `_total` counters, `_seconds` durations, base units.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_POINT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)


class Metrics:
    """The service's metrics; methods record one event each."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "lensserve_requests", "Evaluation requests by model and outcome "
            "(ok, invalid_input, too_large, rejected, timeout, cancelled, error).",
            ["model", "outcome"], registry=r,
        )
        self.points = Counter(
            "lensserve_points", "Points answered by model and status (ok, invalid, non_finite).",
            ["model", "status"], registry=r,
        )
        self.request_seconds = Histogram(
            "lensserve_request_duration_seconds", "Time from a decoded request to its answer.",
            ["model"], buckets=_SECONDS_BUCKETS, registry=r,
        )
        self.batch_size = Histogram(
            "lensserve_batch_size_points", "Real (unpadded) points per dispatched batch.",
            ["model"], buckets=_POINT_BUCKETS, registry=r,
        )
        self.padded_size = Histogram(
            "lensserve_batch_padded_size_points", "Bucket size each batch was padded to.",
            ["model"], buckets=_POINT_BUCKETS, registry=r,
        )
        self.queue_wait = Histogram(
            "lensserve_queue_wait_seconds", "Time a request's points waited before dispatch.",
            ["model"], buckets=_SECONDS_BUCKETS, registry=r,
        )
        self.compute_seconds = Histogram(
            "lensserve_compute_seconds", "Device time per batch, by bucket and variant.",
            ["model", "bucket", "variant"], buckets=_SECONDS_BUCKETS, registry=r,
        )
        self.queue_depth = Gauge(
            "lensserve_queue_depth_points", "Points waiting in the queue.", ["model"], registry=r,
        )
        self.rejections = Counter(
            "lensserve_rejections", "Requests refused before evaluation, by reason.",
            ["model", "reason"], registry=r,
        )
        self.compilations = Counter(
            "lensserve_compilations", "Compiled executables (one per model, bucket and variant).",
            ["model", "variant"], registry=r,
        )
        self.compile_seconds = Counter(
            "lensserve_compile_seconds", "Seconds spent compiling (lowering plus XLA compile).",
            ["model", "variant"], registry=r,
        )
        self.registrations = Counter(
            "lensserve_registrations", "Model registrations (POST /v1/models) by outcome: "
            "ready (201), compiling (202), invalid, too_large, unsupported, conflict, full, "
            "rate_limited.", ["outcome"], registry=r,
        )
        self.registered_models = Gauge(
            "lensserve_registered_models", "Models in the registry (restored failed ones "
            "included).", registry=r,
        )
        self.max_registered_models = Gauge(
            "lensserve_registered_models_max", "max_models: the most the registry may hold "
            "(0: no limit).", registry=r,
        )
        self.max_registrations_per_minute = Gauge(
            "lensserve_registrations_per_minute_max", "max_registrations_per_minute (0: no "
            "limit).", registry=r,
        )
        self.ready = Gauge("lensserve_ready", "1 once every bucket of every model is compiled.",
                           registry=r)
        self.stuck_batches = Counter(
            "lensserve_stuck_batches", "Batches the watchdog found running past their bound.",
            ["model"], registry=r,
        )
        self.stuck_now = Gauge(
            "lensserve_stuck_batches_running", "Batches past their bound still running now.",
            registry=r,
        )

    def observe_batch(
        self, model: str, points: int, bucket: int, gradient: bool, seconds: float
    ) -> None:
        self.batch_size.labels(model).observe(points)
        self.padded_size.labels(model).observe(bucket)
        self.compute_seconds.labels(model, str(bucket), _variant(gradient)).observe(seconds)

    def observe_compilation(self, model: str, gradient: bool, seconds: float) -> None:
        self.compilations.labels(model, _variant(gradient)).inc()
        self.compile_seconds.labels(model, _variant(gradient)).inc(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _variant(gradient: bool) -> str:
    return "value_and_grad" if gradient else "value"
