"""Prometheus metrics of one worker process, in its own registry (no module-level state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.slots = Gauge("langflow_worker_slots", "Execution slots (= broker prefetch)", registry=r)
        self.in_flight = Gauge("langflow_worker_jobs_in_flight", "Jobs being executed now", registry=r)
        self.duration = Histogram(
            "langflow_worker_job_duration_seconds",
            "Wall time of one job execution",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.processed = Counter(
            "langflow_worker_jobs_processed_total", "Jobs finished, by final status (ok|error)", ["status"], registry=r
        )
        self.failures = Counter(
            "langflow_worker_job_failures_total",
            "Failed executions, by what happened next (retried|dead_lettered|poison)",
            ["outcome"],
            registry=r,
        )
        self.draining = Gauge("langflow_worker_draining", "1 after SIGTERM while in-flight jobs finish", registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve /metrics on `port` (0 = do not serve)."""
        if port:
            start_http_server(port, addr=addr, registry=self.registry)
