"""KEDA autoscaling: the runtime's scaling metric against replicas, scaler health and the HPA KEDA drives."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import new_dashboard, query, row, single, ts

NS = 'namespace=~"$namespace"'
# the HPA KEDA makes for the runtime's ScaledObject: the chart names it <release>-runtime
HPA = f'{NS}, horizontalpodautoscaler=~".+-runtime"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            "langflow-keda",
            "KEDA autoscaling",
            "ScaledObjects: the scaler's metric (queue length) against replicas, scaler errors and the HPA KEDA "
            "manages.",
            ["keda", "autoscaling"],
        )
        .with_row(row("Now"))
        .with_panel(
            single(
                "Replicas",
                "Current replicas of KEDA-managed HPAs.",
                "none",
                query(f"sum(kube_horizontalpodautoscaler_status_current_replicas{{{HPA}}})"),
            )
        )
        .with_panel(
            single(
                "Scaler errors (5 m)",
                "Errors reading scaler metrics over 5 minutes.",
                "none",
                query(f"sum(increase(keda_scaler_detail_errors_total{{{NS}}}[5m]))"),
            )
        )
        .with_panel(
            single(
                "Paused ScaledObjects",
                "ScaledObjects with autoscaling paused.",
                "none",
                query(f"sum(keda_scaled_object_paused{{{NS}}})"),
            )
        )
        .with_panel(
            single(
                "Active scalers",
                "Scalers reporting activity (value above the activation threshold).",
                "none",
                query(f"sum(keda_scaler_active{{{NS}}})"),
            )
        )
        .with_row(row("Scaling"))
        .with_panel(
            ts(
                "Scaler metric",
                "The value each scaler reports to the HPA (queue length for the runtime).",
                "short",
                query(f"namespace_scaledobject:keda_scaler_metrics_value:max{{{NS}}}", "{{scaledObject}} {{metric}}"),
            )
        )
        .with_panel(
            ts(
                "Replicas: current, desired, max",
                "What the HPA runs, wants and may run.",
                "short",
                query(
                    f"kube_horizontalpodautoscaler_status_current_replicas{{{HPA}}}",
                    "current {{horizontalpodautoscaler}}",
                ),
                query(
                    f"kube_horizontalpodautoscaler_status_desired_replicas{{{HPA}}}",
                    "desired {{horizontalpodautoscaler}}",
                    "B",
                ),
                query(
                    f"kube_horizontalpodautoscaler_spec_max_replicas{{{HPA}}}", "max {{horizontalpodautoscaler}}", "C"
                ),
            )
        )
        .with_panel(
            ts(
                "Queue depth",
                "Ready messages per queue (the runtime's trigger).",
                "short",
                query(f"namespace_queue:rabbitmq_queue_messages_ready:sum{{{NS}}}", "{{queue}}"),
            )
        )
        .with_panel(
            ts(
                "HPA conditions",
                "HPA conditions that are true (ScalingActive false means KEDA's metric is unavailable).",
                "short",
                query(
                    f'kube_horizontalpodautoscaler_status_condition{{{HPA}, status="true"}}',
                    "{{horizontalpodautoscaler}} {{condition}}",
                ),
            )
        )
        .with_row(row("KEDA health"))
        .with_panel(
            ts(
                "Errors",
                "Scaler and ScaledObject errors per second.",
                "ops",
                query(
                    f"sum by (scaledObject, scaler) (rate(keda_scaler_detail_errors_total{{{NS}}}[$__rate_interval]))",
                    "{{scaledObject}} {{scaler}}",
                ),
                query(
                    f"sum by (scaledObject) (rate(keda_scaled_object_errors_total{{{NS}}}[$__rate_interval]))",
                    "{{scaledObject}}",
                    "B",
                ),
            )
        )
        .with_panel(
            ts(
                "Scaler latency",
                "Time to read each scaler's metric.",
                "s",
                query(f"keda_scaler_metrics_latency_seconds{{{NS}}}", "{{scaledObject}} {{scaler}}"),
            )
        )
        .with_panel(
            ts(
                "Scale loop latency",
                "Deviation of KEDA's scaling loop from its schedule.",
                "s",
                query(f"keda_internal_scale_loop_latency_seconds{{{NS}}}", "{{resource}}"),
            )
        )
    )
