"""Render tests of the monitoring chart: Prometheus Operator objects only when the CRDs are served, monitors
that select the pods the other charts really render, rules and dashboards identical to alerts/ and dashboards/,
receivers wired to Secrets, and the bundled stack's configs accepted by promtool/amtool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import CHARTS, ROOT, profiles, tool

pytestmark = pytest.mark.render

CHART = CHARTS / "langflow-monitoring"
OPERATOR_APIS = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1alpha1")
OPERATOR_KINDS = {"PodMonitor", "ServiceMonitor", "PrometheusRule", "AlertmanagerConfig", "Probe"}
ALL_RECEIVERS = {
    "alertmanager.receivers.slack.enabled": True,
    "alertmanager.receivers.slack.existingSecret": "am-slack",
    "alertmanager.receivers.email.enabled": True,
    "alertmanager.receivers.email.to": "oncall@example.org",
    "alertmanager.receivers.email.from": "alerts@example.org",
    "alertmanager.receivers.email.smarthost": "smtp.example.org:587",
    "alertmanager.receivers.email.authUsername": "alerts",
    "alertmanager.receivers.email.existingSecret": "am-smtp",
    "alertmanager.receivers.pagerduty.enabled": True,
    "alertmanager.receivers.pagerduty.existingSecret": "am-pagerduty",
    "alertmanager.receivers.webhook.enabled": True,
    "alertmanager.receivers.webhook.url": "http://hooks.example.org/alerts",
}


def monitoring(set_values: dict[str, Any] | None = None, api_versions: tuple[str, ...] = ()) -> helm.Manifest:
    return helm.template(CHART, set_values=set_values, api_versions=api_versions)


def rule_groups() -> list[dict[str, Any]]:
    groups = []
    for f in sorted((ROOT / "alerts").glob("*.rules.yaml")):
        groups += yaml.safe_load(f.read_text())["groups"]
    return groups


def pod_matches(workload: dict[str, Any], selector: dict[str, str], port: str) -> bool:
    if workload["kind"] not in ("Deployment", "StatefulSet", "DaemonSet"):
        return False
    tpl = workload["spec"]["template"]
    labels = tpl["metadata"].get("labels", {})
    ports = {p.get("name") for c in tpl["spec"]["containers"] for p in c.get("ports", [])}
    return all(labels.get(k) == v for k, v in selector.items()) and port in ports


@pytest.fixture(scope="module")
def prod_with_operator() -> helm.Manifest:
    return helm.render_profile("prod", api_versions=OPERATOR_APIS)


@pytest.mark.parametrize("name", profiles())
def test_no_operator_objects_without_the_crds(name: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """Every profile renders without the Prometheus Operator API: nothing that needs its CRDs."""
    assert not rendered_profiles[name].kinds() & OPERATOR_KINDS


def test_operator_objects_with_the_crds(prod_with_operator: helm.Manifest) -> None:
    m = prod_with_operator
    names = {o["metadata"]["name"] for o in m.of_kind("PodMonitor")}
    assert names == {f"lf-monitoring-{n}" for n in ("ide", "runtime", "rabbitmq", "database", "cnpg", "qdrant", "keda")}
    assert len(m.of_kind("PrometheusRule")) == 1
    assert len(m.of_kind("AlertmanagerConfig")) == 1
    for pm in m.of_kind("PodMonitor"):
        assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"  # prod's prometheusSelectorLabels


def test_v1_without_v1alpha1_renders_no_alertmanagerconfig() -> None:
    m = monitoring(api_versions=("monitoring.coreos.com/v1",))
    assert m.of_kind("PodMonitor") and m.of_kind("PrometheusRule")
    assert not m.of_kind("AlertmanagerConfig")


@pytest.mark.parametrize(
    ("monitor", "port", "component", "exporters"),
    [
        ("ide", "metrics", "ide", ["langflow"]),
        ("runtime", "metrics", "runtime", ["langflow", "worker"]),
        ("rabbitmq", "metrics", "broker", ["rabbitmq", "rabbitmq"]),
        ("qdrant", "http", "vectorstore", ["qdrant"]),
    ],
)
def test_pod_monitors_select_real_pods(
    prod_with_operator: helm.Manifest, monitor: str, port: str, component: str, exporters: list[str]
) -> None:
    """Each monitor's selector and port name match a workload the component chart renders."""
    pm = prod_with_operator.get("PodMonitor", f"lf-monitoring-{monitor}")
    selector = pm["spec"]["selector"]["matchLabels"]
    assert pm["spec"]["namespaceSelector"]["matchNames"] == ["langflow"]
    endpoints = pm["spec"]["podMetricsEndpoints"]
    assert [e["relabelings"][1]["replacement"] for e in endpoints] == exporters
    assert {e["relabelings"][0]["replacement"] for e in endpoints} == {component}
    for ep in endpoints:
        matched = [
            w["metadata"]["name"] for w in prod_with_operator.workloads() if pod_matches(w, selector, ep["port"])
        ]
        assert matched, f"{monitor}: no workload has labels {selector} and a port named {ep['port']}"
    assert endpoints[0]["port"] == port


def test_rabbitmq_monitor_reads_per_queue_metrics(prod_with_operator: helm.Manifest) -> None:
    eps = prod_with_operator.get("PodMonitor", "lf-monitoring-rabbitmq")["spec"]["podMetricsEndpoints"]
    assert [e["path"] for e in eps] == ["/metrics", "/metrics/detailed"]
    assert eps[1]["params"] == {"family": ["queue_coarse_metrics", "queue_consumer_count"]}
    broker = prod_with_operator.get("StatefulSet", "lf-broker")
    ports = {
        p["name"]: p["containerPort"] for c in broker["spec"]["template"]["spec"]["containers"] for p in c["ports"]
    }
    assert ports["metrics"] == 15692


def test_cnpg_and_keda_monitors(prod_with_operator: helm.Manifest) -> None:
    cnpg = prod_with_operator.get("PodMonitor", "lf-monitoring-cnpg")
    cluster = cnpg["spec"]["selector"]["matchLabels"]["cnpg.io/cluster"]
    assert prod_with_operator.get("Cluster", cluster)  # the database chart's CloudNativePG Cluster
    keda = prod_with_operator.get("PodMonitor", "lf-monitoring-keda")
    assert keda["spec"]["namespaceSelector"]["matchNames"] == ["keda"]
    assert keda["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True  # keep KEDA's own namespace label
    qdrant = prod_with_operator.get("PodMonitor", "lf-monitoring-qdrant")["spec"]["podMetricsEndpoints"][0]
    assert qdrant["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": "lf-vectorstore-credentials", "key": "api-key"},
    }


def test_redis_broker_gets_the_redis_monitor() -> None:
    m = helm.render_profile("redis-queue", api_versions=OPERATOR_APIS)
    names = {o["metadata"]["name"] for o in m.of_kind("PodMonitor")}
    assert "lf-monitoring-redis" in names and "lf-monitoring-rabbitmq" not in names


def test_prometheusrule_is_alerts_dir(prod_with_operator: helm.Manifest) -> None:
    rule = prod_with_operator.of_kind("PrometheusRule")[0]
    assert rule["spec"]["groups"] == rule_groups()


def test_dashboard_configmaps(prod_with_operator: helm.Manifest) -> None:
    cms = [
        c for c in prod_with_operator.of_kind("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard") == "1"
    ]
    assert len(cms) == 5
    committed = {p.name: json.loads(p.read_text()) for p in (ROOT / "dashboards").glob("*.json")}
    for cm in cms:
        assert cm["metadata"]["annotations"]["grafana_folder"] == "Langflow"
        ((key, text),) = cm["data"].items()
        assert json.loads(text) == committed[key]


def test_alertmanagerconfig_receivers_reference_secrets() -> None:
    m = monitoring(set_values=ALL_RECEIVERS, api_versions=OPERATOR_APIS)
    amc = m.of_kind("AlertmanagerConfig")[0]["spec"]
    receivers = {r["name"]: r for r in amc["receivers"]}
    assert set(receivers) == {"null", "slack", "email", "pagerduty", "webhook"}
    assert receivers["slack"]["slackConfigs"][0]["apiURL"] == {"name": "am-slack", "key": "url"}
    assert receivers["email"]["emailConfigs"][0]["authPassword"] == {"name": "am-smtp", "key": "password"}
    assert receivers["pagerduty"]["pagerdutyConfigs"][0]["routingKey"] == {"name": "am-pagerduty", "key": "routing-key"}
    routes = {r["receiver"]: r["matchers"][0]["value"] for r in amc["route"]["routes"]}
    assert routes == {
        "slack": "critical|warning",
        "email": "critical",
        "pagerduty": "critical",
        "webhook": "critical|warning",
    }
    assert not m.of_kind("Secret"), "the chart must not create receiver Secrets"


def test_disabled_receivers_are_not_rendered() -> None:
    amc = monitoring(api_versions=OPERATOR_APIS).of_kind("AlertmanagerConfig")[0]["spec"]
    assert [r["name"] for r in amc["receivers"]] == ["null"]
    assert amc["route"]["routes"] is None or amc["route"]["routes"] == []


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alertmanager.receivers.slack.enabled": True}, "receivers.slack.existingSecret is required"),
        ({"alertmanager.receivers.pagerduty.enabled": True}, "receivers.pagerduty.existingSecret is required"),
        ({"alertmanager.receivers.email.enabled": True}, "receivers.email.to is required"),
        ({"alertmanager.receivers.webhook.enabled": True}, "receivers.webhook.url or .existingSecret is required"),
    ],
)
def test_receiver_without_credentials_fails(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message.replace(".", r"\.")):
        monitoring(set_values=values, api_versions=OPERATOR_APIS)


# ------------------------------------------------------------------------------------------------ bundled
@pytest.fixture(scope="module")
def dev() -> helm.Manifest:
    return helm.render_profile("dev", set_values={f"monitoring.{k}": v for k, v in ALL_RECEIVERS.items()})


def bundled_config(m: helm.Manifest, name: str, key: str) -> str:
    return m.get("ConfigMap", name)["data"][key]


def test_bundled_stack_objects(dev: helm.Manifest) -> None:
    assert not dev.kinds() & OPERATOR_KINDS
    names = {w["metadata"]["name"]: w for w in dev.workloads() if w["metadata"]["name"].startswith("lf-monitoring")}
    assert set(names) == {f"lf-monitoring-{n}" for n in ("prometheus", "alertmanager", "grafana", "loki", "alloy")}
    images = {c["image"] for w in names.values() for c in w["spec"]["template"]["spec"]["containers"]}
    repos = {i.rsplit(":", 1)[0] for i in images}
    assert repos == {
        "quay.io/prometheus/prometheus",
        "quay.io/prometheus/alertmanager",
        "docker.io/grafana/grafana",
        "docker.io/grafana/loki",
        "docker.io/grafana/alloy",
    }
    assert all(":" in i and not i.endswith(":latest") for i in images)
    for w in names.values():
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]
            assert c.get("readinessProbe") and c.get("livenessProbe")


@pytest.mark.parametrize("part", ["prometheus", "loki"])
def test_bundled_store_mounts_an_existing_claim(dev: helm.Manifest, part: str) -> None:
    """monitoring.bundled.<part>.persistence.existingClaim (issue 17, item 6): the StatefulSet mounts the user's
    claim where its own PVC went and renders no volumeClaimTemplate; with persistence off the claim would be
    ignored for an emptyDir, so that is refused, naming both keys."""
    key = f"monitoring.bundled.{part}.persistence"
    plain = dev.get("StatefulSet", f"lf-monitoring-{part}")
    (template,) = plain["spec"]["volumeClaimTemplates"]
    container = plain["spec"]["template"]["spec"]["containers"][0]
    data_path = next(vm["mountPath"] for vm in container["volumeMounts"] if vm["name"] == template["metadata"]["name"])
    sts = helm.render_profile("dev", set_values={f"{key}.existingClaim": f"restored-{part}"}).get(
        "StatefulSet", f"lf-monitoring-{part}"
    )
    assert not sts["spec"].get("volumeClaimTemplates")
    pod = sts["spec"]["template"]["spec"]
    mount = next(vm for vm in pod["containers"][0]["volumeMounts"] if vm["mountPath"] == data_path)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume == {"name": mount["name"], "persistentVolumeClaim": {"claimName": f"restored-{part}"}}
    with pytest.raises(helm.HelmError, match=rf"{key}\.existingClaim .*{key}\.enabled true"):
        helm.render_profile("dev", set_values={f"{key}.existingClaim": "x", f"{key}.enabled": False})
    with pytest.raises(helm.HelmError, match=r"existingClaim"):
        helm.render_profile("dev", set_values={f"{key}.existingClaim": "Not_A_Name"})


def test_bundled_prometheus_retention(dev: helm.Manifest) -> None:
    args = dev.get("StatefulSet", "lf-monitoring-prometheus")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--storage.tsdb.retention.time=30d" in args
    assert "--storage.tsdb.retention.size=1GB" in args  # dev caps the TSDB


@pytest.mark.timeout(60)
def test_bundled_prometheus_config_passes_promtool(dev: helm.Manifest, tmp_path: Path) -> None:
    """prometheus.yml and the rule files of the rendered ConfigMaps, checked by promtool together."""
    rules = dev.get("ConfigMap", "lf-monitoring-prometheus-rules")["data"]
    assert set(rules) == {p.name for p in (ROOT / "alerts").glob("*.rules.yaml")}
    (tmp_path / "rules").mkdir()
    for name, text in rules.items():
        (tmp_path / "rules" / name).write_text(text)
    (tmp_path / "secrets" / "qdrant").mkdir(parents=True)
    (tmp_path / "secrets" / "qdrant" / "api-key").write_text("k")
    conf = bundled_config(dev, "lf-monitoring-prometheus", "prometheus.yml").replace("/etc/prometheus", str(tmp_path))
    # Debian's promtool is built without Kubernetes service discovery: the copy it checks swaps each job's
    # kubernetes_sd_configs for an empty static_configs; everything else (relabelling, params, auth,
    # alerting, rule files) is checked as rendered, and the discovery block is asserted below.
    doc = yaml.safe_load(conf)
    for job in doc["scrape_configs"]:
        if "kubernetes_sd_configs" in job:
            assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["langflow"]}}]
            job["static_configs"] = [{"targets": []}]
            del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = {j["job_name"] for j in yaml.safe_load(conf)["scrape_configs"]}
    assert {"ide", "runtime", "runtime-worker", "rabbitmq", "rabbitmq-detailed", "qdrant"} <= jobs


@pytest.mark.timeout(60)
def test_bundled_alertmanager_routes_every_receiver(dev: helm.Manifest, tmp_path: Path) -> None:
    """amtool accepts the rendered config and routes each severity to the receivers that asked for it."""
    conf = tmp_path / "alertmanager.yml"
    conf.write_text(bundled_config(dev, "lf-monitoring-alertmanager", "alertmanager.yml"))
    check = subprocess.run([tool("amtool"), "check-config", str(conf)], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stdout + check.stderr

    def route(*labels: str) -> set[str]:
        proc = subprocess.run(
            [tool("amtool"), "config", "routes", "test", f"--config.file={conf}", *labels],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        return set(proc.stdout.strip().split(","))

    assert route("alertname=PostgreSQLDown", "severity=critical") == {"slack", "email", "pagerduty", "webhook"}
    assert route("alertname=HPAAtMaxReplicas", "severity=warning") == {"slack", "webhook"}
    assert route("alertname=Other", "severity=info") == {"null"}
    deploy = dev.get("Deployment", "lf-monitoring-alertmanager")["spec"]["template"]["spec"]
    mounted = {v["secret"]["secretName"] for v in deploy["volumes"] if "secret" in v}
    assert mounted == {"am-slack", "am-smtp", "am-pagerduty"}


def test_bundled_grafana_provisions_datasources_and_dashboards(dev: helm.Manifest) -> None:
    ds = yaml.safe_load(bundled_config(dev, "lf-monitoring-grafana", "datasources.yaml"))["datasources"]
    assert {d["type"] for d in ds} == {"prometheus", "loki", "alertmanager"}
    pod = dev.get("Deployment", "lf-monitoring-grafana")["spec"]["template"]["spec"]
    projected = next(v for v in pod["volumes"] if v["name"] == "dashboards")["projected"]["sources"]
    dashboard_cms = {
        c["metadata"]["name"] for c in dev.of_kind("ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
    }
    assert {s["configMap"]["name"] for s in projected} == dashboard_cms and len(dashboard_cms) == 5
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/etc/grafana/admin/admin-password"  # a file, not an env value
    admin = next(v for v in pod["volumes"] if v["name"] == "admin")
    assert admin["secret"]["secretName"] == "lf-monitoring-grafana-admin"
    secret = dev.secret("lf-monitoring-grafana-admin")  # made by the secret generator Job from its spec
    assert secret and set(secret["data"]) == {"admin-user", "admin-password"}
    assert secret["metadata"]["labels"]["langflow-platform.dev/generated-by"] == "secret-generator"


def test_alloy_ships_logs_to_loki(dev: helm.Manifest, prod_with_operator: helm.Manifest) -> None:
    bundled = bundled_config(dev, "lf-monitoring-alloy", "config.alloy")
    assert 'url = "http://lf-monitoring-loki.langflow.svc:3100/loki/api/v1/push"' in bundled
    assert 'names = ["langflow"]' in bundled and "loki.source.kubernetes" in bundled
    integration = bundled_config(prod_with_operator, "lf-monitoring-alloy", "config.alloy")
    assert "loki-gateway.loki.svc.cluster.local" in integration


@pytest.mark.timeout(120)
def test_operator_objects_validate_against_the_crd_schemas(tmp_path: Path) -> None:
    """PodMonitors, PrometheusRule and an AlertmanagerConfig with every receiver on, through kubeconform -strict
    with the Prometheus Operator CRD schemas (.tools/schemas, from the pinned prometheus-operator module)."""
    m = monitoring(set_values=ALL_RECEIVERS, api_versions=OPERATOR_APIS)
    objects = [o for o in m.objects if o["kind"] in OPERATOR_KINDS]
    assert {o["kind"] for o in objects} == {"PodMonitor", "PrometheusRule", "AlertmanagerConfig"}
    path = tmp_path / "operator-objects.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    schemas = ROOT / ".tools" / "schemas"
    cmd = [
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-schema-location",
        str(schemas / "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"),
        str(path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Valid: {len(objects)}" in proc.stdout, proc.stdout
