"""Alert rules: promtool validity and unit tests, a firing and a silent case per alert, annotations and
runbooks, and every metric/label a rule uses exists in the catalogue built from real exporters."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.harness import metrics_catalogue as mc
from tests.harness.paths import ROOT, tool

pytestmark = pytest.mark.alerts

ALERTS = ROOT / "alerts"
RULE_FILES = sorted(ALERTS.glob("*.rules.yaml"))
TEST_FILES = sorted((ALERTS / "tests").glob("*.test.yaml"))
CHART_ALERTS = ROOT / "charts" / "langflow-monitoring" / "files" / "alerts"

# Issue 6's list of alerts, by the name each has in alerts/.
REQUIRED_ALERTS = {
    "LangflowDown": "Langflow down",
    "LangflowHighErrorRate": "5xx ratio",
    "LangflowIDELatencyHigh": "p95 latency over target (IDE 100 ms)",
    "LangflowRuntimeLatencyHigh": "p95 latency over target (runtime 1 s)",
    "LangflowRuntimeQueueBacklog": "runtime queue backlog growing while at max replicas",
    "KEDAScalerErrors": "KEDA scaler errors",
    "KEDAScaledObjectNotReady": "ScaledObject not ready",
    "HPAAtMaxReplicas": "HPA at max for 15 min",
    "PostgreSQLDown": "PostgreSQL down",
    "PostgreSQLReplicationLag": "replication lag",
    "PostgreSQLConnectionsNearMax": "connections near max",
    "PostgreSQLBackupMissing": "backup missing > 26 h",
    "RabbitMQNodeDown": "RabbitMQ node down",
    "RabbitMQNetworkPartition": "partition",
    "RabbitMQMemoryAlarm": "memory alarm",
    "RabbitMQDiskAlarm": "disk alarm",
    "RabbitMQUnackedMessagesGrowing": "unacked growth",
    "RedisDown": "Redis down",
    "QdrantDown": "Qdrant down",
    "QdrantDeadReplicas": "dead replicas",
    "PersistentVolumeFillingUp": "PVC > 85%",
    "PodCrashLooping": "pod crash looping",
}


def rules() -> list[dict[str, Any]]:
    out = []
    for f in RULE_FILES:
        for group in yaml.safe_load(f.read_text())["groups"]:
            out += [dict(r, _file=f.name, _group=group["name"]) for r in group["rules"]]
    return out


def alert_rules() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> mc.Catalogue:
    return mc.cached(tmp_path_factory.getbasetemp())


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=ALERTS)


def test_promtool_check_rules() -> None:
    proc = run_promtool("check", "rules", *[str(f) for f in RULE_FILES])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(RULE_FILES)


@pytest.mark.timeout(120)
def test_promtool_unit_tests_pass() -> None:
    proc = run_promtool("test", "rules", *[str(f) for f in TEST_FILES])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(TEST_FILES)


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for f in TEST_FILES:
        doc = yaml.safe_load(f.read_text())
        for case in doc["tests"]:
            for t in case.get("alert_rule_test", []):
                (firing if t.get("exp_alerts") else silent).add(t["alertname"])
    names = {r["alert"] for r in alert_rules()}
    missing = {n: [w for w, s in (("firing", firing), ("silent", silent)) if n not in s] for n in names}
    missing = {n: m for n, m in missing.items() if m}
    assert not missing, f"alerts without a promtool case: {missing}"
    assert not (firing | silent) - names, f"tests for alerts that do not exist: {(firing | silent) - names}"


def test_issue_alerts_all_present() -> None:
    names = {r["alert"] for r in alert_rules()}
    assert not set(REQUIRED_ALERTS) - names, {n: REQUIRED_ALERTS[n] for n in set(REQUIRED_ALERTS) - names}


def test_every_alert_has_summary_description_runbook_and_severity() -> None:
    runbooks = (ALERTS / "RUNBOOKS.md").read_text()
    anchors = {line[3:].strip().lower() for line in runbooks.splitlines() if line.startswith("## ")}
    bad = []
    for r in alert_rules():
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key):
                bad.append(f"{r['alert']}: no {key}")
        url = ann.get("runbook_url", "")
        if not url.endswith(f"RUNBOOKS.md#{r['alert'].lower()}") or r["alert"].lower() not in anchors:
            bad.append(f"{r['alert']}: runbook_url {url!r} has no matching section in alerts/RUNBOOKS.md")
        if r.get("labels", {}).get("severity") not in ("critical", "warning"):
            bad.append(f"{r['alert']}: severity must be critical or warning")
    assert not bad, "\n".join(bad)


@pytest.mark.timeout(240)
def test_rules_use_only_metrics_and_labels_from_the_catalogue(catalogue: mc.Catalogue) -> None:
    problems = {}
    for r in rules():
        p = catalogue.problems(r["expr"])
        if p:
            problems[r.get("alert") or r.get("record")] = p
    assert not problems, problems


@pytest.mark.timeout(240)
def test_catalogue_comes_from_real_exporters(catalogue: mc.Catalogue) -> None:
    """The scraped parts hold what only a live server shows (per-queue, distribution, exporter up flags)."""
    expect = {
        "rabbitmq_detailed_queue_messages_ready": "rabbitmq-server 3.10 (scraped)",
        "rabbitmq_alarms_memory_used_watermark": "rabbitmq-server 3.10 (scraped)",
        "erlang_vm_dist_node_state": "rabbitmq-server 3.10 (scraped)",
        "pg_up": "prometheus-postgres-exporter (scraped)",
        "pg_settings_max_connections": "prometheus-postgres-exporter (scraped)",
        "redis_up": "prometheus-redis-exporter (scraped)",
        "langflow_worker_jobs_in_flight": "langflow_worker (its exposition)",
        "http_server_request_duration_seconds_bucket": mc.LANGFLOW_SOURCE,
        "langflow_db_pool_connections_in_use": mc.LANGFLOW_SOURCE,
        "cnpg_pg_replication_lag": "cloudnative-pg module source",
        "cnpg_collector_up": "cloudnative-pg module source",
        "cnpg_backends_total": "cloudnative-pg module source",
    }
    got = {k: catalogue.sources.get(k) for k in expect}
    assert got == expect
    assert catalogue.metrics["rabbitmq_detailed_queue_messages_ready"] >= {"vhost", "queue"}
    assert catalogue.metrics["erlang_vm_dist_node_state"] >= {"peer"}


def test_langflow_record_matches_the_live_scrape(catalogue: mc.Catalogue) -> None:
    """alerts/catalogue/langflow.txt (the first scrape, kept as a record) still matches what Langflow exposes."""
    recorded = set(mc.load_data_file(mc.CATALOGUE_DIR / "langflow.txt"))
    live = {name for name, source in catalogue.sources.items() if source == mc.LANGFLOW_SOURCE}
    assert recorded - live == set(), "Langflow no longer exposes these: update the rules/dashboards and the record"


def test_keda_catalogue_matches_keda_source() -> None:
    """Every name of the cited KEDA file is defined by the pinned KEDA's source; the pre-2.17 names are gone."""
    source = mc.keda_source_names(mc.module_dir("github.com/kedacore/keda/v2", mc.pinned("KEDA_VERSION")))
    documented = set(mc.load_data_file(mc.CATALOGUE_DIR / "keda.txt"))
    assert documented <= source, documented - source
    assert {"keda_scaler_errors_total", "keda_scaled_object_errors", "keda_scaler_errors"}.isdisjoint(
        source | documented
    )


def test_catalogue_data_files_cite_their_source() -> None:
    for f in sorted(mc.CATALOGUE_DIR.glob("*.txt")):
        header = mc.data_file_header(f)
        assert "https://" in header or "SCRAPED" in header, f"{f.name}: header must cite where the names come from"
        assert mc.load_data_file(f), f"{f.name} lists no metric"


def test_selector_extraction() -> None:
    sel = mc.selectors(
        'sum by (namespace, le) (rate(http_server_request_duration_seconds_bucket{http_route!~"/health.*", '
        'component="ide"}[$__rate_interval])) / on (namespace) group_left () max(up{job="x"} offset 5m) > 0.5 '
        'and label_replace(kube_pod_info, "a", "$1", "b", "(.+)")'
    )
    assert sel == [
        mc.Selector("http_server_request_duration_seconds_bucket", ("http_route", "component")),
        mc.Selector("up", ("job",)),
        mc.Selector("kube_pod_info", ()),
    ]


def test_unknown_metric_or_label_is_reported() -> None:
    """The check can fail: a misspelt metric and an unknown label are both reported."""
    c = mc.Catalogue()
    c.add("t", {"rabbitmq_queue_messages_ready": frozenset({"queue"})})
    assert c.problems("rabbitmq_queue_messages_ready{queue='a', namespace='b'}") == []
    assert c.problems("rabbitmq_queue_message_ready") == ["unknown metric 'rabbitmq_queue_message_ready'"]
    assert c.problems("rabbitmq_queue_messages_ready{qeue='a'}")[0].startswith("unknown label 'qeue'")


def test_chart_ships_the_same_rule_files() -> None:
    """The chart wraps copies of alerts/*.rules.yaml (files/alerts); `make dashboards` syncs them."""
    shipped = {p.name: p.read_bytes() for p in sorted(CHART_ALERTS.glob("*.rules.yaml"))}
    source = {p.name: p.read_bytes() for p in RULE_FILES}
    assert shipped == source, "charts/langflow-monitoring/files/alerts differs from alerts/: run `make dashboards`"
