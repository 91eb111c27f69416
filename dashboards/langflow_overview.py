"""Langflow Overview: traffic, errors and latency of the IDE and runtime tiers, process health, the job queue."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import new_dashboard, query, row, single, ts

NS = 'namespace=~"$namespace"'
LF = f'exporter="langflow", {NS}'
WORKER = f'exporter="worker", {NS}'
RUNTIME_HPA = f'{NS}, horizontalpodautoscaler=~".+-runtime"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            "langflow-overview",
            "Langflow Overview",
            "IDE and runtime traffic, errors and latency against the targets (IDE p95 100 ms, runtime p95 1 s).",
            ["langflow"],
        )
        .with_row(row("Service level"))
        .with_panel(
            single(
                "IDE requests/s",
                "Requests per second served by the IDE (health probes excluded).",
                "reqps",
                query(f'sum(namespace_component:langflow_http_requests:rate5m{{{NS}, component="ide"}})'),
            )
        )
        .with_panel(
            single(
                "Runtime requests/s",
                "Requests per second served by the runtime (health probes excluded).",
                "reqps",
                query(f'sum(namespace_component:langflow_http_requests:rate5m{{{NS}, component="runtime"}})'),
            )
        )
        .with_panel(
            single(
                "5xx ratio",
                "Share of requests answered with a 5xx status, both tiers.",
                "percentunit",
                query(
                    f"sum(namespace_component:langflow_http_errors:rate5m{{{NS}}})"
                    f" / sum(namespace_component:langflow_http_requests:rate5m{{{NS}}})"
                ),
            )
        )
        .with_panel(
            single("Langflow pods up", "Langflow targets answering their scrape.", "none", query(f"sum(up{{{LF}}})"))
        )
        .with_panel(
            ts(
                "Request rate by tier",
                "Requests per second per tier.",
                "reqps",
                query(f"namespace_component:langflow_http_requests:rate5m{{{NS}}}", "{{component}}"),
            )
        )
        .with_panel(
            ts(
                "Latency p50 / p95 by tier",
                "Request latency quantiles; targets: IDE p95 < 100 ms, runtime p95 < 1 s.",
                "s",
                query(
                    f"namespace_component:langflow_http_request_duration_seconds:p95_5m{{{NS}}}", "p95 {{component}}"
                ),
                query(
                    f"namespace_component:langflow_http_request_duration_seconds:p50_5m{{{NS}}}",
                    "p50 {{component}}",
                    "B",
                ),
            )
        )
        .with_panel(
            ts(
                "Error ratio by tier",
                "5xx share per tier (alert above 5 %).",
                "percentunit",
                query(
                    f"namespace_component:langflow_http_errors:rate5m{{{NS}}}"
                    f" / on (namespace, component) namespace_component:langflow_http_requests:rate5m{{{NS}}}",
                    "{{component}}",
                ),
            )
        )
        .with_panel(
            ts(
                "Top routes",
                "The ten busiest routes.",
                "reqps",
                query(
                    "topk(10, sum by (component, http_route) "
                    f"(namespace_component_route:langflow_http_requests:rate5m{{{NS}}}))",
                    "{{component}} {{http_route}}",
                ),
            )
        )
        .with_row(row("Processes"))
        .with_panel(
            ts(
                "Active requests",
                "Requests in flight per pod.",
                "short",
                query(f"sum by (component, pod) (http_server_active_requests{{{LF}}})", "{{pod}}"),
            )
        )
        .with_panel(
            ts(
                "Database pool",
                "SQLAlchemy pool connections in use and pool size per pod.",
                "short",
                query(f"sum by (pod) (langflow_db_pool_connections_in_use{{{LF}}})", "in use {{pod}}"),
                query(f"sum by (pod) (langflow_db_pool_size{{{LF}}})", "size {{pod}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Event loop lag p95",
                "asyncio event loop lag: high values mean blocking work in request handlers.",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (component, le) "
                    f"(rate(langflow_event_loop_lag_seconds_bucket{{{LF}}}[$__rate_interval])))",
                    "{{component}}",
                ),
            )
        )
        .with_panel(
            ts(
                "Background jobs",
                "Langflow's background jobs by status.",
                "short",
                query(f"sum by (component, status) (langflow_bg_jobs{{{LF}}})", "{{component}} {{status}}"),
            )
        )
        .with_panel(
            ts(
                "CPU",
                "CPU seconds per second per pod.",
                "short",
                query(f"rate(process_cpu_seconds_total{{{LF}}}[$__rate_interval])", "{{pod}}"),
            )
        )
        .with_panel(
            ts(
                "Resident memory",
                "Resident set size per pod.",
                "bytes",
                query(f"process_resident_memory_bytes{{{LF}}}", "{{pod}}"),
            )
        )
        .with_row(row("Runtime workers"))
        .with_panel(
            ts(
                "Jobs in flight / slots",
                "Jobs the queue workers execute now against their execution slots (broker prefetch).",
                "short",
                query(f"sum(langflow_worker_jobs_in_flight{{{WORKER}}})", "in flight"),
                query(f"sum(langflow_worker_slots{{{WORKER}}})", "slots", "B"),
            )
        )
        .with_panel(
            ts(
                "Job duration p95",
                "95th percentile of one job's wall time, by final status.",
                "s",
                query(
                    "histogram_quantile(0.95, sum by (status, le) "
                    f"(rate(langflow_worker_job_duration_seconds_bucket{{{WORKER}}}[$__rate_interval])))",
                    "{{status}}",
                ),
            )
        )
        .with_panel(
            ts(
                "Jobs processed",
                "Jobs finished per second, by final status.",
                "ops",
                query(
                    f"sum by (status) (rate(langflow_worker_jobs_processed_total{{{WORKER}}}[$__rate_interval]))",
                    "{{status}}",
                ),
            )
        )
        .with_panel(
            ts(
                "Job failures",
                "Failed executions per second, by what happened next (retried, dead-lettered, poison).",
                "ops",
                query(
                    f"sum by (outcome) (rate(langflow_worker_job_failures_total{{{WORKER}}}[$__rate_interval]))",
                    "{{outcome}}",
                ),
            )
        )
        .with_row(row("Runtime queue"))
        .with_panel(
            ts(
                "Job queue depth",
                "Messages ready and unacknowledged per queue.",
                "short",
                query(f"namespace_queue:rabbitmq_queue_messages_ready:sum{{{NS}}}", "ready {{queue}}"),
                query(f"namespace_queue:rabbitmq_queue_messages_unacked:sum{{{NS}}}", "unacked {{queue}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Runtime replicas",
                "Replicas of the runtime's KEDA-managed HPA against its maximum.",
                "short",
                query(
                    f"kube_horizontalpodautoscaler_status_current_replicas{{{RUNTIME_HPA}}}",
                    "current",
                ),
                query(
                    f"kube_horizontalpodautoscaler_spec_max_replicas{{{RUNTIME_HPA}}}",
                    "max",
                    "B",
                ),
            )
        )
    )
