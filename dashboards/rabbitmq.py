"""RabbitMQ: nodes, queues (per queue from /metrics/detailed), rates, consumers, resources and alarms."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import new_dashboard, query, row, single, ts

NS = 'namespace=~"$namespace"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            "langflow-rabbitmq",
            "RabbitMQ",
            "The runtime's job broker: queue depth, message rates, consumers, memory/disk and alarms.",
            ["rabbitmq", "broker"],
        )
        .with_row(row("Overview"))
        .with_panel(
            single("Nodes", "RabbitMQ nodes reporting.", "none", query(f"count(rabbitmq_identity_info{{{NS}}})"))
        )
        .with_panel(
            single(
                "Ready messages",
                "Messages waiting in all queues.",
                "none",
                query(f"sum(rabbitmq_queue_messages_ready{{{NS}}})"),
            )
        )
        .with_panel(
            single(
                "Unacknowledged",
                "Messages delivered but not yet acknowledged.",
                "none",
                query(f"sum(rabbitmq_queue_messages_unacked{{{NS}}})"),
            )
        )
        .with_panel(
            single(
                "Alarms",
                "Memory and disk alarms in effect (publishers are blocked while > 0).",
                "none",
                query(
                    f"sum(rabbitmq_alarms_memory_used_watermark{{{NS}}})"
                    f" + sum(rabbitmq_alarms_free_disk_space_watermark{{{NS}}})"
                ),
            )
        )
        .with_row(row("Queues"))
        .with_panel(
            ts(
                "Messages per queue",
                "Ready and unacknowledged messages per queue.",
                "short",
                query(f"namespace_queue:rabbitmq_queue_messages_ready:sum{{{NS}}}", "ready {{queue}}"),
                query(f"namespace_queue:rabbitmq_queue_messages_unacked:sum{{{NS}}}", "unacked {{queue}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Consumers per queue",
                "Consumers attached to each queue (runtime workers).",
                "short",
                query(f"sum by (queue) (rabbitmq_detailed_queue_consumers{{{NS}}})", "{{queue}}"),
            )
        )
        .with_panel(
            ts(
                "Message rates",
                "Published, delivered and acknowledged messages per second.",
                "ops",
                query(f"sum(rate(rabbitmq_global_messages_received_total{{{NS}}}[$__rate_interval]))", "published"),
                query(
                    f"sum(rate(rabbitmq_global_messages_delivered_total{{{NS}}}[$__rate_interval]))", "delivered", "B"
                ),
                query(
                    f"sum(rate(rabbitmq_global_messages_acknowledged_total{{{NS}}}[$__rate_interval]))",
                    "acknowledged",
                    "C",
                ),
            )
        )
        .with_panel(
            ts(
                "Dead-lettered",
                "Messages dead-lettered per second (rejected, delivery limit reached).",
                "ops",
                query(
                    f"sum(rate(rabbitmq_global_messages_dead_lettered_rejected_total{{{NS}}}[$__rate_interval]))",
                    "rejected",
                ),
                query(
                    f"sum(rate(rabbitmq_global_messages_dead_lettered_delivery_limit_total{{{NS}}}[$__rate_interval]))",
                    "delivery limit",
                    "B",
                ),
            )
        )
        .with_row(row("Nodes"))
        .with_panel(
            ts(
                "Memory",
                "Resident memory of each node against its high watermark.",
                "bytes",
                query(f"rabbitmq_process_resident_memory_bytes{{{NS}}}", "used {{pod}}"),
                query(f"rabbitmq_resident_memory_limit_bytes{{{NS}}}", "limit {{pod}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Free disk",
                "Free disk of each node against its limit.",
                "bytes",
                query(f"rabbitmq_disk_space_available_bytes{{{NS}}}", "free {{pod}}"),
                query(f"rabbitmq_disk_space_available_limit_bytes{{{NS}}}", "limit {{pod}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Connections and channels",
                "Client connections and channels.",
                "short",
                query(f"sum(rabbitmq_connections{{{NS}}})", "connections"),
                query(f"sum(rabbitmq_channels{{{NS}}})", "channels", "B"),
            )
        )
        .with_panel(
            ts(
                "Cluster links",
                "Peers each node is connected to (Erlang distribution links up); drops mean a partition.",
                "short",
                query(
                    f'count by (instance) (erlang_vm_dist_node_state{{{NS}, peer!~"rabbitmqcli.*"}} == 3)',
                    "{{instance}}",
                ),
            )
        )
    )
