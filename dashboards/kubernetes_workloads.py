"""Kubernetes workloads: pods, restarts, CPU/memory against requests and limits, replicas, volumes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import new_dashboard, query, row, single, ts

NS = 'namespace=~"$namespace"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            "langflow-kubernetes-workloads",
            "Kubernetes workloads",
            "Pods, restarts, resources, replicas and volumes of the platform's namespace(s).",
            ["kubernetes"],
        )
        .with_row(row("Pods"))
        .with_panel(
            single(
                "Pods running",
                "Pods in phase Running.",
                "none",
                query(f'sum(kube_pod_status_phase{{{NS}, phase="Running"}})'),
            )
        )
        .with_panel(
            single(
                "Pods not ready",
                "Pods whose Ready condition is false.",
                "none",
                query(f'sum(kube_pod_status_ready{{{NS}, condition="false"}})'),
            )
        )
        .with_panel(
            single(
                "Restarts (1 h)",
                "Container restarts over the last hour.",
                "none",
                query(f"sum(increase(kube_pod_container_status_restarts_total{{{NS}}}[1h]))"),
            )
        )
        .with_panel(
            single(
                "Crash looping",
                "Containers waiting in CrashLoopBackOff.",
                "none",
                query(f'sum(kube_pod_container_status_waiting_reason{{{NS}, reason="CrashLoopBackOff"}})'),
            )
        )
        .with_row(row("Resources"))
        .with_panel(
            ts(
                "CPU by pod",
                "CPU cores used per pod, with the pod's CPU requests.",
                "short",
                query(f"namespace_pod:container_cpu_usage_seconds:rate5m{{{NS}}}", "{{pod}}"),
                query(
                    f'sum by (pod) (kube_pod_container_resource_requests{{{NS}, resource="cpu"}})',
                    "request {{pod}}",
                    "B",
                ),
            )
        )
        .with_panel(
            ts(
                "Memory by pod",
                "Working set per pod, with the pod's memory limits.",
                "bytes",
                query(f"namespace_pod:container_memory_working_set_bytes:sum{{{NS}}}", "{{pod}}"),
                query(
                    f'sum by (pod) (kube_pod_container_resource_limits{{{NS}, resource="memory"}})',
                    "limit {{pod}}",
                    "B",
                ),
            )
        )
        .with_panel(
            ts(
                "CPU throttling",
                "Share of CFS periods in which the pod was throttled.",
                "percentunit",
                query(
                    "sum by (pod) (rate(container_cpu_cfs_throttled_periods_total"
                    f'{{{NS}, container!=""}}[$__rate_interval]))'
                    f' / sum by (pod) (rate(container_cpu_cfs_periods_total{{{NS}, container!=""}}[$__rate_interval]))',
                    "{{pod}}",
                ),
            )
        )
        .with_panel(
            ts(
                "Restarts by container",
                "Restarts over 15 minutes.",
                "none",
                query(
                    f"sum by (pod, container) (increase(kube_pod_container_status_restarts_total{{{NS}}}[15m]))",
                    "{{pod}}/{{container}}",
                ),
            )
        )
        .with_row(row("Replicas"))
        .with_panel(
            ts(
                "Deployments",
                "Available against desired replicas.",
                "short",
                query(f"kube_deployment_status_replicas_available{{{NS}}}", "available {{deployment}}"),
                query(f"kube_deployment_spec_replicas{{{NS}}}", "desired {{deployment}}", "B"),
            )
        )
        .with_panel(
            ts(
                "StatefulSets",
                "Ready against desired replicas.",
                "short",
                query(f"kube_statefulset_status_replicas_ready{{{NS}}}", "ready {{statefulset}}"),
                query(f"kube_statefulset_replicas{{{NS}}}", "desired {{statefulset}}", "B"),
            )
        )
        .with_panel(
            ts(
                "HorizontalPodAutoscalers",
                "Current replicas against the maximum of each HPA (the runtime's, made by KEDA, is <release>-runtime).",
                "short",
                query(
                    f"kube_horizontalpodautoscaler_status_current_replicas{{{NS}}}",
                    "current {{horizontalpodautoscaler}}",
                ),
                query(
                    f"kube_horizontalpodautoscaler_spec_max_replicas{{{NS}}}", "max {{horizontalpodautoscaler}}", "B"
                ),
            )
        )
        .with_panel(
            ts(
                "Volume usage",
                "Used share of each PVC (alert above 85 %).",
                "percentunit",
                query(
                    f"kubelet_volume_stats_used_bytes{{{NS}}}"
                    f" / on (namespace, persistentvolumeclaim) kubelet_volume_stats_capacity_bytes{{{NS}}}",
                    "{{persistentvolumeclaim}}",
                ),
            )
        )
    )
