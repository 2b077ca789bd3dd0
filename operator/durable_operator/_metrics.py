"""Prometheus metrics of the operator (the engine's own metrics live in `durable._metrics`)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.reconciles = Counter(
            "durable_operator_reconciles_total",
            "Handler runs by kind and outcome",
            ["kind", "outcome"],
            registry=registry,
        )
        self.reconcile_errors = Counter(
            "durable_operator_reconcile_errors_total",
            "Handler runs that raised, by kind",
            ["kind"],
            registry=registry,
        )
        self.status_events = Counter(
            "durable_operator_status_events_total",
            "Status events read from the engine's stream",
            registry=registry,
        )
        self.status_patches = Counter(
            "durable_operator_status_patches_total",
            "DurableExecution status patches by outcome",
            ["outcome"],
            registry=registry,
        )
        self.mirrors_created = Counter(
            "durable_operator_mirrors_created_total",
            "Mirror DurableExecutions created",
            ["workflow"],
            registry=registry,
        )
        self.executions_finished = Counter(
            "durable_operator_executions_observed_total",
            "Executions seen reaching a final phase, by workflow and phase",
            ["workflow", "phase"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "durable_operator_status_batch_seconds",
            "Time to apply one batch of status patches",
            registry=registry,
        )
        self.pending_patches = Gauge(
            "durable_operator_pending_patches",
            "Coalesced status patches waiting to be applied",
            registry=registry,
        )
        self.schedule_lag = Gauge(
            "durable_operator_schedule_lag_seconds",
            "How far past its next run time a schedule is, by schedule",
            ["schedule"],
            registry=registry,
        )


_METRICS: OperatorMetrics | None = None


def metrics() -> OperatorMetrics:
    """The process-wide metrics (created once: several operators in one test process share them)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = OperatorMetrics()
    return _METRICS


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose `/metrics` (operator and engine metrics) on `port` from a background thread."""
    start_http_server(port, addr=addr)
