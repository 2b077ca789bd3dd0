"""Prometheus metrics of the worker (served on `/metrics` by `durable worker --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server


class Metrics:
    def __init__(self) -> None:
        self.started = Counter(
            "durable_executions_started_total", "Executions started through this process", ["workflow"]
        )
        self.finished_total = Counter(
            "durable_executions_finished_total",
            "Executions that reached a final status",
            ["workflow", "status"],
        )
        self.activations = Counter(
            "durable_activations_total", "Workflow activations (replays) by outcome", ["outcome"]
        )
        self.step_seconds = Histogram(
            "durable_step_duration_seconds",
            "Duration of step bodies",
            ["workflow"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120),
        )
        self.queue_depth = Gauge("durable_queue_depth", "Ready-queue entries waiting or unacknowledged")
        self.due_timers = Gauge("durable_due_timers", "Timers that are due and not yet fired")
        self.schedule_lag = Gauge("durable_schedule_lag_seconds", "How late the last schedule slot fired")
        self.concurrency_parked_total = Counter(
            "durable_concurrency_parked_total",
            "Activations parked in a workflow's waiting line because its max_concurrency slots were taken",
            ["workflow"],
        )
        self.timeouts = Counter(
            "durable_timeouts_total",
            "Time-outs: step attempts (kind step or heartbeat) and execution deadlines (kind execution)",
            ["workflow", "kind"],
        )

    def finished(self, workflow: str, status: str) -> None:
        self.finished_total.labels(workflow=workflow, status=status).inc()

    def concurrency_parked(self, workflow: str) -> None:
        self.concurrency_parked_total.labels(workflow=workflow).inc()

    def timed_out(self, workflow: str, kind: str) -> None:
        self.timeouts.labels(workflow=workflow, kind=kind).inc()


METRICS = Metrics()


def serve_metrics(port: int, addr: str = "0.0.0.0") -> None:
    """Serve the default registry on `port` from a background thread."""
    start_http_server(port, addr=addr)
