"""PostgreSQL: availability, connections, throughput, cache, replication, size and backups.

Every panel reads both exporters the database chart may run: CloudNativePG's instance exporter (cnpg_*, HA
mode) and postgres_exporter (pg_*, standalone); whichever is present draws.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard

from .common import new_dashboard, query, row, single, ts

NS = 'namespace=~"$namespace"'


def build() -> dashboard.Dashboard:
    return (
        new_dashboard(
            "langflow-postgresql",
            "PostgreSQL",
            "The platform database: CloudNativePG (HA) or the standalone instance.",
            ["postgresql", "database"],
        )
        .with_row(row("Health"))
        .with_panel(
            single(
                "Instances up",
                "Instances whose exporter reaches PostgreSQL.",
                "none",
                query(f"sum(pg_up{{{NS}}}) or sum(cnpg_collector_up{{{NS}}})"),
            )
        )
        .with_panel(
            single(
                "Connections used",
                "Highest share of max_connections in use on any instance.",
                "percentunit",
                query(
                    f"max(sum by (pod) (pg_stat_activity_count{{{NS}}})"
                    f" / on (pod) max by (pod) (pg_settings_max_connections{{{NS}}}))"
                    f" or max(sum by (pod) (cnpg_backends_total{{{NS}}})"
                    f' / on (pod) max by (pod) (cnpg_pg_settings_setting{{{NS}, name="max_connections"}}))'
                ),
            )
        )
        .with_panel(
            single(
                "Max replication lag",
                "Largest replay lag of a replica.",
                "s",
                query(f"max(cnpg_pg_replication_lag{{{NS}}})"),
            )
        )
        .with_panel(
            single(
                "Last backup age",
                "Time since the last successful backup (alert above 26 h).",
                "s",
                query(
                    f"time() - max(cnpg_collector_last_available_backup_timestamp{{{NS}}})"
                    " or time() - max(kube_cronjob_status_last_successful_time"
                    f'{{{NS}, cronjob=~".*database.*backup.*"}})'
                ),
            )
        )
        .with_row(row("Activity"))
        .with_panel(
            ts(
                "Connections by state",
                "Backends per instance and state.",
                "short",
                query(f"sum by (pod, state) (pg_stat_activity_count{{{NS}}})", "{{pod}} {{state}}"),
                query(f"sum by (pod, state) (cnpg_backends_total{{{NS}}})", "{{pod}} {{state}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Transactions",
                "Commits and rollbacks per second.",
                "ops",
                query(f"sum by (pod) (rate(pg_stat_database_xact_commit{{{NS}}}[$__rate_interval]))", "commit {{pod}}"),
                query(
                    f"sum by (pod) (rate(pg_stat_database_xact_rollback{{{NS}}}[$__rate_interval]))",
                    "rollback {{pod}}",
                    "B",
                ),
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_database_xact_commit{{{NS}}}[$__rate_interval]))",
                    "commit {{pod}}",
                    "C",
                ),
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_database_xact_rollback{{{NS}}}[$__rate_interval]))",
                    "rollback {{pod}}",
                    "D",
                ),
            )
        )
        .with_panel(
            ts(
                "Cache hit ratio",
                "Share of block reads served from shared buffers.",
                "percentunit",
                query(
                    f"sum by (pod) (rate(pg_stat_database_blks_hit{{{NS}}}[$__rate_interval])) / (sum by (pod) "
                    f"(rate(pg_stat_database_blks_hit{{{NS}}}[$__rate_interval])) + sum by (pod) "
                    f"(rate(pg_stat_database_blks_read{{{NS}}}[$__rate_interval])))",
                    "{{pod}}",
                ),
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_database_blks_hit{{{NS}}}[$__rate_interval])) / (sum by (pod) "
                    f"(rate(cnpg_pg_stat_database_blks_hit{{{NS}}}[$__rate_interval])) + sum by (pod) "
                    f"(rate(cnpg_pg_stat_database_blks_read{{{NS}}}[$__rate_interval])))",
                    "{{pod}}",
                    "B",
                ),
            )
        )
        .with_panel(
            ts(
                "Deadlocks and temp files",
                "Deadlocks and temporary files per second.",
                "ops",
                query(
                    f"sum by (pod) (rate(pg_stat_database_deadlocks{{{NS}}}[$__rate_interval]))", "deadlocks {{pod}}"
                ),
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_database_deadlocks{{{NS}}}[$__rate_interval]))",
                    "deadlocks {{pod}}",
                    "B",
                ),
                query(
                    f"sum by (pod) (rate(pg_stat_database_temp_files{{{NS}}}[$__rate_interval]))",
                    "temp files {{pod}}",
                    "C",
                ),
            )
        )
        .with_row(row("Replication and storage"))
        .with_panel(
            ts(
                "Replication lag",
                "Replay lag of each replica (alert above 30 s).",
                "s",
                query(f"cnpg_pg_replication_lag{{{NS}}}", "{{pod}}"),
            )
        )
        .with_panel(
            ts(
                "Database size",
                "Size of each database.",
                "bytes",
                query(f"sum by (pod, datname) (pg_database_size_bytes{{{NS}}})", "{{pod}} {{datname}}"),
                query(f"sum by (pod, datname) (cnpg_pg_database_size_bytes{{{NS}}})", "{{pod}} {{datname}}", "B"),
            )
        )
        .with_panel(
            ts(
                "Locks",
                "Locks held by mode.",
                "short",
                query(f"sum by (pod, mode) (pg_locks_count{{{NS}}})", "{{pod}} {{mode}}"),
                query(f"sum by (pod) (cnpg_backends_waiting_total{{{NS}}})", "waiting {{pod}}", "B"),
            )
        )
        .with_panel(
            ts(
                "WAL archiving",
                "Archived and failed WAL segments per second (CloudNativePG).",
                "ops",
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_archiver_archived_count{{{NS}}}[$__rate_interval]))",
                    "archived {{pod}}",
                ),
                query(
                    f"sum by (pod) (rate(cnpg_pg_stat_archiver_failed_count{{{NS}}}[$__rate_interval]))",
                    "failed {{pod}}",
                    "B",
                ),
            )
        )
    )
