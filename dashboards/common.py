"""Shared pieces of the dashboards: the datasource and namespace variables and small panel constructors.

Every query goes through the `datasource` variable (type prometheus), so a dashboard imports as-is into any
Grafana and the user picks the Prometheus to read from; `namespace` narrows it to one installation.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, DataSourceRef, VariableRefresh

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
SCHEMA_TAGS = ["langflow-platform"]


def new_dashboard(uid: str, title: str, description: str, tags: list[str]) -> dashboard.Dashboard:
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([*SCHEMA_TAGS, *tags])
        .timezone("browser")
        .time("now-6h", "now")
        .refresh("30s")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus").regex(""))
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .datasource(DATASOURCE)
            .query({"query": "label_values(up, namespace)", "refId": "namespace"})
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True)
            .all_value(".*")
            .multi(True)
        )
    )


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE).range()
    return q.legend_format(legend) if legend else q


def ts(
    title: str, description: str, unit: str, *targets: prometheus.Dataquery, w: int = 12, h: int = 8
) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).description(description).unit(unit).datasource(DATASOURCE).span(w).height(h)
    for t in targets:
        panel = panel.with_target(t)
    return panel


def single(title: str, description: str, unit: str, target: prometheus.Dataquery, w: int = 6, h: int = 4) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .span(w)
        .height(h)
        .with_target(target.instant())
    )


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)
