"""render: the app tier (IDE and runtime) in every profile — exact objects, KEDA triggers per broker type, the
scaling behaviour block, probes, env wiring through the connections helper, writable mounts, kept Secrets."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import test_policy as policy
from tests.harness import helm
from tests.harness.paths import CHARTS, ROOT, UMBRELLA, profile_file, profiles
from tests.test_policy import selects

pytestmark = pytest.mark.render

BEHAVIOR = {
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "policies": [
            {"type": "Percent", "value": 100, "periodSeconds": 30},
            {"type": "Pods", "value": 2, "periodSeconds": 30},
        ],
        "selectPolicy": "Max",
    },
    "scaleDown": {
        "stabilizationWindowSeconds": 300,
        "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
    },
}


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    for c in workload["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def env_order(c: dict[str, Any]) -> list[str]:
    return [e["name"] for e in c.get("env", [])]


def chart_default_image(chart: str, *path: str) -> str:
    """The image reference a chart's values.yaml declares at `path` ({registry, repository, tag}), composed as
    langflow-common.image does (no profile overrides the worker image)."""
    img: Any = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    for key in path:
        img = img[key]
    ref = f"{img['registry']}/{img['repository']}" if img.get("registry") else img["repository"]
    return f"{ref}:{img['tag']}"


def broker_type(m: helm.Manifest) -> str:
    so = m.get("ScaledObject", "lf-runtime")
    return so["spec"]["triggers"][0]["type"]


@pytest.mark.parametrize("profile", profiles())
def test_app_objects_exist(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    for kind, name in [
        ("Deployment", "lf-ide"),
        ("Service", "lf-ide"),
        ("ServiceAccount", "lf-ide"),
        ("Ingress", "lf-ide"),
        ("Ingress", "lf-ide-api"),
        ("StatefulSet", "lf-runtime"),
        ("Service", "lf-runtime-headless"),
        ("ServiceAccount", "lf-runtime"),
        ("ConfigMap", "lf-runtime-flows"),
        ("ScaledObject", "lf-runtime"),
        ("TriggerAuthentication", "lf-runtime"),
    ]:
        m.get(kind, name)
    for name in ("lf-ide-secrets", "lf-runtime-api-key"):  # made by the secret generator Job from their specs
        assert m.secret(name), f"profile {profile}: no spec and no Secret {name}"


@pytest.mark.parametrize("profile", profiles())
def test_ide_deployment_contract(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    d = m.get("Deployment", "lf-ide")
    spec = d["spec"]["template"]["spec"]
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["enableServiceLinks"] is False, "service links inject LANGFLOW_PORT=tcp://... and break Langflow"
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsUser"] == 1000 and spec["securityContext"]["runAsGroup"] == 0
    c = container(d, "langflow")
    assert c["image"].endswith("langflowai/langflow:1.13.0")
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    e = env(c)
    assert e["LANGFLOW_AUTO_LOGIN"] == "false"
    assert e["LANGFLOW_SUPERUSER_PASSWORD"]["secretKeyRef"] == {"name": "lf-ide-secrets", "key": "superuser-password"}
    assert e["LANGFLOW_SECRET_KEY"]["secretKeyRef"] == {"name": "lf-ide-secrets", "key": "secret-key"}
    assert e["LANGFLOW_PROMETHEUS_ENABLED"] == "true" and e["LANGFLOW_PROMETHEUS_PORT"] == "9090"
    assert e["LANGFLOW_DO_NOT_TRACK"] == "true"
    assert e["HOME"] == "/app/data" and e["LANGFLOW_CONFIG_DIR"].startswith("/app/data")
    # the database URL names no password: libpq reads PGPASSWORD, from the same Secret key
    url = e["LANGFLOW_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://langflow@lf-database:5432/langflow"), url
    assert e["PGPASSWORD"]["secretKeyRef"] == e["LF_DATABASE_PASSWORD"]["secretKeyRef"]
    assert "secretKeyRef" in e["LF_DATABASE_PASSWORD"]
    mounts = {v["mountPath"] for v in c["volumeMounts"]}
    assert {"/app/data", "/tmp"} <= mounts, "Langflow writes HOME/config and /tmp on a read-only root"
    probes = {k: c[k]["httpGet"]["path"] for k in ("readinessProbe", "livenessProbe")}
    assert probes == {"readinessProbe": "/health_check", "livenessProbe": "/health"}
    startup = c["startupProbe"]
    assert startup["exec"]["command"][:2] == ["python", "/opt/langflow-platform/warmup.py"], startup
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 90, "must survive a ~60-90 s cold start"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 7860, "metrics": 9090}
    svc_ports = {p["name"]: p["port"] for p in m.get("Service", "lf-ide")["spec"]["ports"]}
    assert svc_ports == {"http": 7860, "metrics": 9090}


def test_ide_startup_probe_runs_the_charts_warmup_script() -> None:
    """warmup.enabled (default): the startup probe execs files/warmup.py, mounted read-only from the release's
    ConfigMap, with the paths and request count from values and no credential (the script reads the container's
    env); the pod template's checksum follows the script. Off: GET /health_check and no ConfigMap."""
    values = {"ide.warmup.paths": ["/api/v1/all", "/api/v1/flows/"], "ide.warmup.requests": 3}
    m = helm.render_profile("prod", set_values=values)
    d = m.get("Deployment", "lf-ide")
    c = container(d, "langflow")
    command = c["startupProbe"]["exec"]["command"]
    script = command[1]
    mount = next(v for v in c["volumeMounts"] if script.startswith(v["mountPath"] + "/"))
    assert mount.get("readOnly") is True, mount
    volume = next(v for v in d["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    data = m.get("ConfigMap", volume["configMap"]["name"])["data"]
    assert data[script.rsplit("/", 1)[1]] == (CHARTS / "langflow-ide" / "files" / "warmup.py").read_text().rstrip("\n")
    assert command[2:] == ["--requests", "3", "--record", command[5], "/api/v1/all", "/api/v1/flows/"], command
    assert c["startupProbe"]["timeoutSeconds"] >= 30, "one attempt requests the 3 MB catalogue several times"
    assert not any("PASSWORD" in arg or "token" in arg.lower() for arg in command), command
    assert "checksum/scripts" in d["spec"]["template"]["metadata"]["annotations"]
    off = helm.render_profile("prod", set_values={"ide.warmup.enabled": False})
    c = container(off.get("Deployment", "lf-ide"), "langflow")
    assert c["startupProbe"]["httpGet"]["path"] == "/health_check"
    assert volume["configMap"]["name"] not in {o["metadata"]["name"] for o in off.of_kind("ConfigMap")}


def test_ide_scaling_and_availability_in_prod(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["prod"]
    hpa = m.get("HorizontalPodAutoscaler", "lf-ide")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    targets = {x["resource"]["name"]: x["resource"]["target"]["averageUtilization"] for x in hpa["metrics"]}
    assert targets == {"cpu": 70, "memory": 80}
    assert m.get("PodDisruptionBudget", "lf-ide")["spec"]["minAvailable"] == "50%"
    spec = m.get("Deployment", "lf-ide")["spec"]["template"]["spec"]
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert "podAntiAffinity" in spec["affinity"]


def test_ide_dev_is_single_replica(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["dev"]
    assert m.get("Deployment", "lf-ide")["spec"]["replicas"] == 1
    assert not m.of_kind("HorizontalPodAutoscaler")


def test_ide_ingress_tiers_tls_websockets(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["prod"]
    ui, api = m.get("Ingress", "lf-ide"), m.get("Ingress", "lf-ide-api")
    a, b = ui["metadata"]["annotations"], api["metadata"]["annotations"]
    assert ui["spec"]["ingressClassName"] == "nginx"
    assert a["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    assert ui["spec"]["tls"][0]["secretName"] == api["spec"]["tls"][0]["secretName"] == "lf-ide-tls"
    assert a["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert "nginx.ingress.kubernetes.io/affinity" not in b, "API tier is stateless"
    assert int(a["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(b["nginx.ingress.kubernetes.io/limit-rps"]) > int(a["nginx.ingress.kubernetes.io/limit-rps"])
    assert a["nginx.ingress.kubernetes.io/proxy-body-size"] == "100m"
    assert [p["path"] for p in api["spec"]["rules"][0]["http"]["paths"]] == ["/api/v1/run", "/api/v1/webhook"]
    assert rendered_profiles["aws"].get("Ingress", "lf-ide")["spec"]["ingressClassName"] == "alb"


def test_ide_issuer_and_httproute_options(tmp_path: Path) -> None:
    values = tmp_path / "route.yaml"
    values.write_text(
        "ide:\n  ingress: {tls: {issuer: my-issuer}}\n"
        "  httpRoute: {enabled: true, parentRefs: [{name: gw, namespace: infra}]}\n"
    )
    m = helm.render_profile("prod", values=[values])
    ann = m.get("Ingress", "lf-ide")["metadata"]["annotations"]
    assert ann["cert-manager.io/issuer"] == "my-issuer" and "cert-manager.io/cluster-issuer" not in ann
    route = m.get("HTTPRoute", "lf-ide")["spec"]
    assert route["parentRefs"] == [{"name": "gw", "namespace": "infra"}]
    assert route["hostnames"] == ["langflow.example.com"]


def test_ide_autoscaling_range_is_validated() -> None:
    with pytest.raises(helm.HelmError, match=r"ide.autoscaling: minReplicas \(5\) must not be greater"):
        helm.render_profile("prod", set_values={"ide.autoscaling.minReplicas": 5, "ide.autoscaling.maxReplicas": 3})
    with pytest.raises(helm.HelmError, match="maxReplicas"):
        helm.render_profile("prod", set_values={"ide.autoscaling.maxReplicas": 7})


@pytest.mark.parametrize("profile", profiles())
def test_generated_secrets_are_made_in_the_cluster(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """The umbrella renders no secret material: each generated Secret is a spec the generator Job reads."""
    m = rendered_profiles[profile]
    assert not [s for s in m.of_kind("Secret") if s.get("data") or s.get("stringData")], "a Secret with data rendered"
    made = {s["metadata"]["name"]: s for s in m.generated_secrets()}
    for name, keys in (("lf-ide-secrets", {"secret-key", "superuser-password"}), ("lf-runtime-api-key", {"api-key"})):
        assert set(made[name]["data"]) == keys and all(made[name]["data"].values())
    job = m.get("Job", "lf-secret-generator")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    specs = [c for c in m.of_kind("ConfigMap") if helm.SECRET_SPEC_LABEL in c["metadata"]["labels"]]
    assert specs and all(int(c["metadata"]["annotations"]["helm.sh/hook-weight"]) < -10 for c in specs)


def test_helm_mode_renders_secrets_kept_on_uninstall() -> None:
    """global.generatedSecrets.mode=helm (component charts on their own): the Secrets are rendered, with keep."""
    m = helm.render_profile("prod", set_values={"global.generatedSecrets.mode": "helm"})
    assert not m.secret_specs() and not [j for j in m.of_kind("Job") if "secret-generator" in j["metadata"]["name"]]
    for name, keys in (("lf-ide-secrets", {"secret-key", "superuser-password"}), ("lf-runtime-api-key", {"api-key"})):
        s = m.get("Secret", name)
        assert s["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        assert set(s["data"]) == keys and all(s["data"].values())


@pytest.mark.parametrize("profile", profiles())
def test_two_renders_are_byte_identical(profile: str) -> None:
    """What Argo CD and `helm template | kubectl apply` see: the same values render the same bytes (no secret is
    generated at render time, so nothing rotates at the next sync)."""
    first, second = (helm.run(["template", "lf", str(UMBRELLA), "-n", "langflow", "-f", str(profile_file(profile))])
                     for _ in range(2))  # fmt: skip
    assert first == second, f"profile {profile}: two renders differ"


def test_existing_secret_replaces_generated_one() -> None:
    m = helm.render_profile(
        "prod", set_values={"ide.auth.existingSecret": "mine", "runtime.auth.apiKeyExistingSecret": "k"}
    )
    assert "lf-ide-secrets" not in {s["name"] for s in m.secret_specs()} | {
        s["metadata"]["name"] for s in m.of_kind("Secret")
    }
    e = env(container(m.get("Deployment", "lf-ide"), "langflow"))
    assert e["LANGFLOW_SECRET_KEY"]["secretKeyRef"]["name"] == "mine"
    w = env(container(m.get("StatefulSet", "lf-runtime"), "worker"))
    assert w["WORKER_API_KEY"]["secretKeyRef"]["name"] == "k"


@pytest.mark.parametrize("profile", profiles())
def test_runtime_statefulset_contract(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    sts = m.get("StatefulSet", "lf-runtime")
    spec = sts["spec"]
    assert "replicas" not in spec, "KEDA owns the replica count"
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["serviceName"] == "lf-runtime-headless"
    assert m.get("Service", "lf-runtime-headless")["spec"]["clusterIP"] == "None"
    assert spec["volumeClaimTemplates"][0]["metadata"]["name"] == "cache"
    pod = spec["template"]["spec"]
    assert pod["enableServiceLinks"] is False
    lf, worker = container(sts, "langflow"), container(sts, "worker")
    assert lf["image"].endswith("langflowai/langflow-backend:1.13.0")
    assert worker["image"] == chart_default_image("langflow-runtime", "worker", "image")
    e, w = env(lf), env(worker)
    assert e["LANGFLOW_BACKEND_ONLY"] == "true"
    assert e["LANGFLOW_LOAD_FLOWS_PATH"] == "/app/flows"
    assert e["LANGFLOW_API_KEY_SOURCE"] == "env"
    # headless runtime: no starter projects, no Assistant endpoints (code-generating, LLM-backed)
    assert e["LANGFLOW_CREATE_STARTER_PROJECTS"] == "false" and e["LANGFLOW_AGENTIC_EXPERIENCE"] == "false"
    assert e["LANGFLOW_API_KEY"] == w["WORKER_API_KEY"], "the worker sends the key the pod's Langflow checks"
    assert e["LANGFLOW_SECRET_KEY"]["secretKeyRef"]["name"] == "lf-ide-secrets", "same key as the IDE (shared DB)"
    assert {v["mountPath"] for v in lf["volumeMounts"]} >= {"/app/data", "/tmp", "/app/flows"}
    assert w["WORKER_EXECUTOR"] == "langflow" and w["WORKER_LANGFLOW_URL"] == "http://127.0.0.1:7860"
    assert w["WORKER_URL"] == "$(LF_BROKER_URL)" and w["WORKER_QUEUE"] == "$(LF_BROKER_QUEUE)"
    assert w["WORKER_WORKER_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    order = env_order(worker)
    assert order.index("LF_BROKER_URL") < order.index("WORKER_URL")
    assert worker["securityContext"]["readOnlyRootFilesystem"] is True
    # graceful shutdown: Langflow outlives the worker's drain, within the grace period
    grace = pod["terminationGracePeriodSeconds"]
    assert grace > int(w["WORKER_JOB_TIMEOUT"])
    assert "preStop" in lf["lifecycle"]
    assert {p["name"] for p in worker["ports"]} == {"worker-metrics"}
    assert worker["livenessProbe"]["tcpSocket"]["port"] == "worker-metrics"
    assert worker["readinessProbe"]["httpGet"]["path"] == "/metrics"
    assert lf["startupProbe"]["httpGet"]["path"] == "/health_check"
    assert lf["livenessProbe"]["httpGet"]["path"] == "/health"


@pytest.mark.parametrize("profile", profiles())
def test_runtime_scaledobject(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    so = m.get("ScaledObject", "lf-runtime")["spec"]
    assert so["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "lf-runtime"}
    assert so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == BEHAVIOR
    assert so["maxReplicaCount"] == (2 if profile == "dev" else 10)
    expected_min = {"dev": 1, "scale-to-zero": 0}.get(profile, 2)
    assert so["minReplicaCount"] == expected_min
    triggers = {t["type"]: t for t in so["triggers"]}
    queue = so["triggers"][0]
    assert queue["authenticationRef"] == {"name": "lf-runtime"}
    if profile == "scale-to-zero":
        assert set(triggers) == {"rabbitmq"}, "scale to zero on the queue alone"
        assert queue["metadata"]["activationValue"] == "0"
    else:
        assert triggers["cpu"]["metadata"]["value"] == "70" and triggers["memory"]["metadata"]["value"] == "80"


def test_rabbitmq_trigger(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["prod"]
    t = m.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert t["type"] == "rabbitmq"
    assert t["metadata"] == {
        "protocol": "amqp",
        "queueName": "langflow.flow-runs",
        "mode": "QueueLength",
        "value": "5",
        "activationValue": "0",
    }
    auth = m.get("TriggerAuthentication", "lf-runtime")["spec"]
    (ref,) = auth["secretTargetRef"]
    assert ref["parameter"] == "host" and ref["name"] == "lf-broker-credentials"
    # KEDA dials as the broker's monitoring user, not as the application's
    data = {k: base64.b64decode(v).decode() for k, v in m.secret(ref["name"])["data"].items()}
    user = urllib.parse.urlsplit(data[ref["key"]]).username
    assert user == data["monitoring-username"] != data["username"], f"KEDA's {ref['key']} dials as {user}"


def test_redis_trigger(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["redis-queue"]
    t = m.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert t["type"] == "redis"
    assert t["metadata"]["address"] == "lf-broker.langflow.svc:6379"
    assert t["metadata"]["listName"] == "langflow.flow-runs" and t["metadata"]["listLength"] == "5"
    auth = m.get("TriggerAuthentication", "lf-runtime")["spec"]
    assert auth["secretTargetRef"] == [{"parameter": "password", "name": "lf-broker-credentials", "key": "password"}]
    ide = env(container(m.get("Deployment", "lf-ide"), "langflow"))
    assert ide["LANGFLOW_CACHE_TYPE"] == "redis" and ide["LANGFLOW_REDIS_URL"] == "$(LF_BROKER_URL)"
    assert ide["LF_BROKER_URL"].startswith("redis://:$(LF_BROKER_PASSWORD)@lf-broker:6379")
    assert ide["LANGFLOW_JOB_QUEUE_TYPE"] == "redis"
    assert ide["LANGFLOW_REDIS_QUEUE_URL"] == "redis://:$(LF_BROKER_PASSWORD)@lf-broker:6379/1"
    sentinel = helm.render_profile("redis-queue", set_values={"runtime.keda.redis.sentinel": True})
    t = sentinel.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert t["type"] == "redis-sentinel" and t["metadata"]["addresses"] == "lf-broker.langflow.svc:26379"


def test_sqs_trigger_with_pod_identity(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["aws"]
    t = m.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert t["type"] == "aws-sqs-queue"
    assert t["metadata"]["queueURL"].startswith("https://sqs.") and t["metadata"]["awsRegion"]
    auth = m.get("TriggerAuthentication", "lf-runtime")["spec"]
    assert auth == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
    sa = m.get("ServiceAccount", "lf-runtime")
    assert "eks.amazonaws.com/role-arn" in sa["metadata"]["annotations"]
    w = env(container(m.get("StatefulSet", "lf-runtime"), "worker"))
    assert w["WORKER_BROKER"] == "$(LF_BROKER_TYPE)"
    assert not any(k.startswith("LF_BROKER_PASSWORD") for k in w), "SQS uses pod identity, no broker password"
    local = helm.render_profile("aws", set_values={"global.broker.sqs.endpoint": "http://127.0.0.1:5000"})
    t = local.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert t["metadata"]["awsEndpoint"] == "http://127.0.0.1:5000"


def test_prometheus_trigger_and_fallback() -> None:
    m = helm.render_profile(
        "prod",
        set_values={
            "runtime.keda.prometheus.enabled": True,
            "runtime.keda.prometheus.serverAddress": "http://prom:9090",
            "runtime.keda.prometheus.query": "sum(x)",
            "runtime.keda.fallback.replicas": 3,
        },
    )
    so = m.get("ScaledObject", "lf-runtime")["spec"]
    prom = next(t for t in so["triggers"] if t["type"] == "prometheus")
    assert prom["metadata"]["serverAddress"] == "http://prom:9090" and prom["metadata"]["query"] == "sum(x)"
    assert so["fallback"] == {"failureThreshold": 3, "replicas": 3}


def test_runtime_range_and_grace_validated() -> None:
    with pytest.raises(
        helm.HelmError, match=r"runtime.keda: minReplicaCount \(8\) must not be greater than maxReplicaCount \(4\)"
    ):
        helm.render_profile("prod", set_values={"runtime.keda.minReplicaCount": 8, "runtime.keda.maxReplicaCount": 4})
    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds"):
        helm.render_profile("prod", set_values={"runtime.terminationGracePeriodSeconds": 60})


def test_flows_configmap_holds_loadable_flows(rendered_profiles: dict[str, helm.Manifest]) -> None:
    import json
    import uuid

    cm = rendered_profiles["prod"].get("ConfigMap", "lf-runtime-flows")
    assert cm["data"], "the runtime ships at least one flow"
    for name, text in cm["data"].items():
        if name == "fill_component_code.py":  # the initContainer's script (see below)
            continue
        flow = json.loads(text)
        assert name.endswith(".json") and flow["data"]["nodes"], f"{name} is a Langflow flow export"
        assert flow.get("endpoint_name"), f"{name}: jobs address flows by endpoint name"
        # Langflow 1.13 updates a loaded flow on restart only when the file's id matches the stored one
        # (otherwise "Skipping flow update ... file id differs"): every built-in flow carries a fixed UUID
        assert uuid.UUID(flow["id"]), f"{name}: a fixed flow id"


def _code_values(flow: dict[str, Any]) -> list[str]:
    """Every code field's value in a flow (the component source a Langflow export embeds)."""
    return [
        f.get("value")
        for n in flow["data"]["nodes"]
        for f in n["data"]["node"]["template"].values()
        if isinstance(f, dict) and f.get("type") == "code"
    ]


def test_committed_flows_carry_no_upstream_code(rendered_profiles: dict[str, helm.Manifest]) -> None:
    """Upstream code is never committed: a flow export must be committed with its code fields emptied (the
    runtime's initContainer fills them from the installed Langflow)."""
    import json

    from tests.harness.paths import ROOT

    files = sorted((ROOT / "charts/langflow-runtime/files/flows").glob("*.json"))
    cm = rendered_profiles["prod"].get("ConfigMap", "lf-runtime-flows")
    assert files and {f.name for f in files} <= set(cm["data"])
    for f in files:
        codes = _code_values(json.loads(f.read_text()))
        assert codes, f"{f.name}: an export has a code field per node"
        assert not any(codes), f"{f.name}: commit the flow with every template.code.value emptied"
    for name, text in cm["data"].items():
        if name.endswith(".json"):
            assert not any(_code_values(json.loads(text))), name


@pytest.mark.parametrize("profile", profiles())
def test_runtime_flows_are_filled_by_an_init_container(
    profile: str, rendered_profiles: dict[str, helm.Manifest]
) -> None:
    from tests.harness.paths import ROOT

    m = rendered_profiles[profile]
    sts = m.get("StatefulSet", "lf-runtime")
    pod = sts["spec"]["template"]["spec"]
    lf = container(sts, "langflow")
    init = pod["initContainers"][-1]
    assert init["name"] == "fill-component-code"
    # the same image (its Langflow package is the one that runs the flows), context and resources
    assert init["image"] == lf["image"]
    assert init["securityContext"] == lf["securityContext"] and init["securityContext"]["readOnlyRootFilesystem"]
    assert init["resources"] == lf["resources"]
    flows_path = env(lf)["LANGFLOW_LOAD_FLOWS_PATH"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    init_mounts = {vm["mountPath"]: vm for vm in init["volumeMounts"]}
    lf_mounts = {vm["mountPath"]: vm for vm in lf["volumeMounts"]}
    # the initContainer writes the emptyDir Langflow loads flows from (read-only there)
    out = init_mounts[flows_path]
    assert not out.get("readOnly") and "emptyDir" in volumes[out["name"]]
    assert lf_mounts[flows_path]["name"] == out["name"] and lf_mounts[flows_path]["readOnly"] is True
    assert "/tmp" in init_mounts and "emptyDir" in volumes[init_mounts["/tmp"]["name"]]
    # ... from the flows ConfigMap, which also carries the script it runs; the filled files are kept on the
    # pod's own cache volume (flows.reuseFilledCode), the one Langflow's /app/data is
    python, script, *options, src, dest = init["command"]
    assert python == "python" and dest == flows_path
    assert options[:1] == ["--cache"], init["command"]
    cache_dir = Path(options[1])
    (cache_vm,) = [vm for vm in init["volumeMounts"] if cache_dir.is_relative_to(vm["mountPath"])]
    assert cache_vm["name"] in {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    assert not cache_vm.get("readOnly") and lf_mounts[cache_vm["mountPath"]]["name"] == cache_vm["name"]
    src_vm = init_mounts[src]
    assert src_vm["readOnly"] is True and volumes[src_vm["name"]]["configMap"]["name"] == "lf-runtime-flows"
    assert script == f"{src}/fill_component_code.py"
    cm = m.get("ConfigMap", "lf-runtime-flows")
    shipped = (ROOT / "charts/langflow-runtime/files/fill_component_code.py").read_text()
    assert cm["data"]["fill_component_code.py"] == shipped.rstrip("\n")


def test_runtime_without_flows_has_no_init_container() -> None:
    off = {"runtime.flows.enabled": False, "runtime.waitForMigrations.enabled": False}
    sts = helm.render_profile("dev", set_values=off).get("StatefulSet", "lf-runtime")
    assert "initContainers" not in sts["spec"]["template"]["spec"]
    assert "LANGFLOW_LOAD_FLOWS_PATH" not in env(container(sts, "langflow"))
    sts = helm.render_profile("dev", set_values={"runtime.flows.enabled": False}).get("StatefulSet", "lf-runtime")
    assert [c["name"] for c in sts["spec"]["template"]["spec"]["initContainers"]] == ["wait-for-migrations"]


@pytest.mark.parametrize("profile", profiles())
def test_runtime_waits_for_the_ide_migrations(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """The umbrella's runtime pods start only after the schema is migrated: a first initContainer with the Langflow
    container's image, security context, resources and database URL (the IDE migrates; see _wait.tpl)."""
    m = rendered_profiles[profile]
    sts = m.get("StatefulSet", "lf-runtime")
    lf = container(sts, "langflow")
    inits = sts["spec"]["template"]["spec"]["initContainers"]
    assert [c["name"] for c in inits] == ["wait-for-migrations", "fill-component-code"]
    wait = inits[0]
    assert wait["image"] == lf["image"] and wait["securityContext"] == lf["securityContext"]
    assert wait["resources"] == lf["resources"]
    we, le = env(wait), env(lf)
    for key in ("LF_DATABASE_USER", "LF_DATABASE_PASSWORD", "PGPASSWORD", "LF_DATABASE_HOST", "LANGFLOW_DATABASE_URL"):
        assert we[key] == le[key], key
    assert int(we["WAIT_TIMEOUT_SECONDS"]) == 600
    script = wait["command"][2]
    assert wait["command"][:2] == ["python", "-c"] and "alembic_version" in script and "get_heads()" in script
    assert we.get("PGSSLROOTCERT") == le.get("PGSSLROOTCERT"), "the same CA verifies the same server"
    writable = {vm["mountPath"] for vm in wait["volumeMounts"] if not vm.get("readOnly")}
    assert writable == {"/tmp"}, "the read-only root filesystem needs a writable /tmp only"


def test_runtime_chart_alone_migrates_itself_unless_told_to_wait() -> None:
    from tests.harness.paths import ROOT

    chart = ROOT / "charts/langflow-runtime"
    alone = helm.template(chart).get("StatefulSet", "lf-runtime")["spec"]["template"]["spec"]
    assert [c["name"] for c in alone["initContainers"]] == ["fill-component-code"]
    on = helm.template(
        chart,
        set_values={"waitForMigrations.enabled": True, "waitForMigrations.timeoutSeconds": 30},
    )
    wait = on.get("StatefulSet", "lf-runtime")["spec"]["template"]["spec"]["initContainers"][0]
    assert wait["name"] == "wait-for-migrations" and env(wait)["WAIT_TIMEOUT_SECONDS"] == "30"
    with pytest.raises(helm.HelmError, match="timeoutSeconds"):
        helm.template(chart, set_values={"waitForMigrations.timeoutSeconds": 1})


@pytest.mark.parametrize("profile", profiles())
def test_langflow_logs_are_json_for_loki(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """LANGFLOW_LOG_ENV=container selects lfx's JSON renderer (lfx/log/logger.py configure); text: container_csv."""
    m = rendered_profiles[profile]
    for kind, name in (("Deployment", "lf-ide"), ("StatefulSet", "lf-runtime")):
        assert env(container(m.get(kind, name), "langflow"))["LANGFLOW_LOG_ENV"] == "container", (kind, name)
    text = helm.render_profile("dev", set_values={"ide.langflow.logFormat": "text"})
    assert env(container(text.get("Deployment", "lf-ide"), "langflow"))["LANGFLOW_LOG_ENV"] == "container_csv"
    assert env(container(text.get("StatefulSet", "lf-runtime"), "langflow"))["LANGFLOW_LOG_ENV"] == "container"
    with pytest.raises(helm.HelmError, match="logFormat"):
        helm.render_profile("dev", set_values={"runtime.langflow.logFormat": "xml"})


def test_several_langflow_workers_need_the_redis_job_queue() -> None:
    with pytest.raises(helm.HelmError, match=r"langflow.workers \(2\) > 1 needs global.broker.type=redis"):
        helm.render_profile("prod", set_values={"ide.langflow.workers": 2})
    m = helm.render_profile("redis-queue", set_values={"ide.langflow.workers": 2})
    assert env(container(m.get("Deployment", "lf-ide"), "langflow"))["LANGFLOW_WORKERS"] == "2"


def test_connections_follow_the_contract_for_external_services(rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles["external"]
    e = env(container(m.get("Deployment", "lf-ide"), "langflow"))
    assert e["LF_DATABASE_PASSWORD"]["secretKeyRef"] == {"name": "langflow-external-db", "key": "password"}
    assert e["LF_VECTORSTORE_URL"] == "https://qdrant.example.internal:6333"
    assert e["LF_VECTORSTORE_API_KEY"]["secretKeyRef"]["name"] == "langflow-external-vectorstore"
    w = env(container(m.get("StatefulSet", "lf-runtime"), "worker"))
    assert w["LF_BROKER_PASSWORD"]["secretKeyRef"] == {"name": "langflow-external-broker", "key": "password"}
    auth = m.get("TriggerAuthentication", "lf-runtime")["spec"]["secretTargetRef"][0]
    assert auth["name"] == "langflow-external-broker"
    direct = helm.render_profile(
        "prod",
        set_values={
            "global.database.host": "db.example.org",
            "global.database.sslmode": "verify-full",
            "global.database.tls.caSecret": "db-ca",
            "global.database.port": 6432,
            "global.broker.vhost": "lf",
        },
    )
    e = env(container(direct.get("Deployment", "lf-ide"), "langflow"))
    assert e["LANGFLOW_DATABASE_URL"].endswith("@db.example.org:6432/langflow?sslmode=verify-full")
    w = env(container(direct.get("StatefulSet", "lf-runtime"), "worker"))
    assert w["LF_BROKER_URL"] == "amqp://$(LF_BROKER_USERNAME):$(LF_BROKER_PASSWORD)@lf-broker:5672/lf"
    trigger = direct.get("ScaledObject", "lf-runtime")["spec"]["triggers"][0]
    assert trigger["metadata"]["vhostName"] == "lf"
    default = env(container(rendered_profiles["prod"].get("StatefulSet", "lf-runtime"), "worker"))
    assert default["LF_BROKER_URL"].endswith("@lf-broker:5672/%2F"), "vhost / is percent-encoded"


# --- helm test hooks (what `helm test` and `ct install` run) -----------------------------------------------------

# A hook pod is replaced at the next `helm test`, never deleted when it succeeds: `helm test --logs` (what
# `ct install` runs) reads its logs after it finished (seen failing on the real node with hook-succeeded).
HOOK_DELETE_POLICY = {"before-hook-creation"}


def hook_pods(m: helm.Manifest) -> dict[str, dict[str, Any]]:
    """The release's `helm test` Pods by the component whose name label they carry (ide, runtime)."""
    return {
        p["metadata"]["labels"]["app.kubernetes.io/name"]: p
        for p in m.of_kind("Pod")
        if (p["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"
    }


def pod_labels(obj: dict[str, Any]) -> dict[str, str]:
    if obj["kind"] == "Pod":
        return obj["metadata"].get("labels") or {}
    return obj["spec"]["template"]["metadata"].get("labels") or {}


def backend(m: helm.Manifest, service: str, port: int) -> tuple[dict[str, Any], dict[str, str], int]:
    """(workload, its pod labels, container port) behind Service `service`'s port `port`, from the render."""
    svc = m.get("Service", service)
    sp = next(p for p in svc["spec"]["ports"] if p["port"] == port)
    for w in m.workloads():
        if w["kind"] in ("Deployment", "StatefulSet") and selects(
            {"matchLabels": svc["spec"]["selector"]}, pod_labels(w)
        ):
            target = sp.get("targetPort", port)
            if isinstance(target, int):
                return w, pod_labels(w), target
            for c in w["spec"]["template"]["spec"]["containers"]:
                for cp in c.get("ports") or []:
                    if cp.get("name") == target:
                        return w, pod_labels(w), cp["containerPort"]
    raise AssertionError(f"{m.source}: no workload behind Service {service} port {port}")


def peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
    """A same-namespace pod peer of a NetworkPolicy rule that selects these labels."""
    return (
        "podSelector" in peer
        and not ({"namespaceSelector", "ipBlock"} & set(peer))
        and selects(peer["podSelector"], labels)
    )


def rule_has_port(rule: dict[str, Any], port: int, protocol: str = "TCP") -> bool:
    ports = rule.get("ports")
    return not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)


def connection_allowed(m: helm.Manifest, src: dict[str, str], dst: dict[str, str], port: int) -> tuple[bool, bool]:
    """(egress from src allowed, ingress to dst allowed) for TCP `port` by the release's NetworkPolicies."""
    egress = ingress = False
    for p in m.of_kind("NetworkPolicy"):
        spec = p["spec"]
        if selects(spec["podSelector"], src) and "Egress" in spec["policyTypes"]:
            egress |= any(
                rule_has_port(r, port) and any(peer_matches(x, dst) for x in r.get("to") or [])
                for r in spec.get("egress") or []
            )
        if selects(spec["podSelector"], dst) and "Ingress" in spec["policyTypes"]:
            ingress |= any(
                rule_has_port(r, port) and any(peer_matches(x, src) for x in r.get("from") or [])
                for r in spec.get("ingress") or []
            )
    return egress, ingress


def dns_allowed(m: helm.Manifest, src: dict[str, str]) -> bool:
    return any(
        selects(p["spec"]["podSelector"], src)
        and any(rule_has_port(r, 53, "UDP") for r in p["spec"].get("egress") or [])
        for p in m.of_kind("NetworkPolicy")
    )


def as_workload(pod: dict[str, Any]) -> dict[str, Any]:
    """A bare Pod shaped as a Job, so the policy rules of tests/test_policy.py (which read pod templates) apply."""
    template = {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod["spec"]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": pod["metadata"], "spec": {"template": template}}


@pytest.mark.parametrize("profile", profiles())
def test_helm_test_hooks_render(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    hooks = hook_pods(m)
    queue_broker = broker_type(m) in ("rabbitmq", "redis")
    assert set(hooks) == ({"ide", "runtime"} if queue_broker else {"ide"}), f"{profile}: hooks {sorted(hooks)}"
    for pod in hooks.values():
        ann = pod["metadata"]["annotations"]
        assert set(ann["helm.sh/hook-delete-policy"].split(",")) == HOOK_DELETE_POLICY
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
        spec = pod["spec"]
        assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        # a hook pod is nobody's replica: no Service, PDB or workload selector picks it up
        labels = pod_labels(pod)
        for obj in m.of_kind("Service") + m.of_kind("PodDisruptionBudget") + m.workloads():
            sel = obj["spec"].get("selector") or {}
            sel = sel if obj["kind"] != "Service" else {"matchLabels": sel}
            assert not selects(sel, labels), f"{profile}: {obj['kind']}/{obj['metadata']['name']} selects {labels}"


@pytest.mark.parametrize("profile", profiles())
def test_ide_health_hook_calls_the_ide_service(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    pod = hook_pods(m)["ide"]
    ide = m.get("Deployment", "lf-ide")
    svc = next(
        s
        for s in m.of_kind("Service")
        if s["spec"].get("selector") and selects({"matchLabels": s["spec"]["selector"]}, pod_labels(ide))
    )
    port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    (c,) = pod["spec"]["containers"]
    e = env(c)
    meta = svc["metadata"]
    assert e["HEALTH_URL"] == f"http://{meta['name']}.{meta['namespace']}.svc:{port}/health_check"
    assert c["image"] == container(ide, "langflow")["image"], "the hook runs in the IDE's own (already pulled) image"
    script = c["command"][-1]
    assert c["command"][:2] == ["python", "-c"] and '"status") == "ok"' in script and "code == 200" in script
    _, backend_labels, target = backend(m, meta["name"], port)
    if m.of_kind("NetworkPolicy"):
        assert connection_allowed(m, pod_labels(pod), backend_labels, target) == (True, True), (
            f"{profile}: the IDE's NetworkPolicy must let the hook reach the IDE pods on {target}"
        )
        assert dns_allowed(m, pod_labels(pod)), f"{profile}: the hook cannot resolve {e['HEALTH_URL']}"


@pytest.mark.parametrize("profile", [p for p in profiles() if p != "aws"])
def test_runtime_echo_hook_uses_the_runtimes_queue(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    m = rendered_profiles[profile]
    pod = hook_pods(m)["runtime"]
    sts = m.get("StatefulSet", "lf-runtime")
    worker = container(sts, "worker")
    (c,) = pod["spec"]["containers"]
    assert c["image"] == worker["image"], "the hook runs in the worker image (it has langflow_worker.submit)"
    assert c["command"] == ["python", "-m", "langflow_worker.submit"]
    args = dict(zip(c["args"][::2], c["args"][1::2], strict=True))
    values = yaml.safe_load((CHARTS / "langflow-runtime" / "values.yaml").read_text())
    assert args["--flow"] == "echo" and args["--expect"] == args["--input"]
    assert args["--timeout"] == str(values["tests"]["timeoutSeconds"])
    e, w = env(c), env(worker)
    assert (e["WORKER_BROKER"], e["WORKER_URL"], e["WORKER_QUEUE"]) == (
        "$(LF_BROKER_TYPE)",
        "$(LF_BROKER_URL)",
        "$(LF_BROKER_QUEUE)",
    )
    for name in ("LF_BROKER_TYPE", "LF_BROKER_URL", "LF_BROKER_QUEUE", "LF_BROKER_PASSWORD"):
        assert e[name] == w[name], f"{profile}: {name} differs from the runtime worker's"
    assert "secretKeyRef" in e["LF_BROKER_PASSWORD"], "credentials come from the broker's Secret"
    order = env_order(c)
    assert order.index("LF_BROKER_URL") < order.index("WORKER_URL")
    # network: the hook shares the runtime pods' policies (egress to the broker) and, for an in-release broker,
    # the broker's policy lets it in on the port the URL names
    policies = m.of_kind("NetworkPolicy")
    if not policies:
        return
    runtime_policies = [p["metadata"]["name"] for p in policies if selects(p["spec"]["podSelector"], pod_labels(sts))]
    hook_policies = [p["metadata"]["name"] for p in policies if selects(p["spec"]["podSelector"], pod_labels(pod))]
    assert runtime_policies and set(runtime_policies) <= set(hook_policies), (runtime_policies, hook_policies)
    assert dns_allowed(m, pod_labels(pod))
    host, port = e["LF_BROKER_URL"].split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)
    if any(s["metadata"]["name"] == host for s in m.of_kind("Service")) and m.get("Service", host)["spec"].get(
        "selector"
    ):
        _, broker_labels, target = backend(m, host, int(port))
        assert connection_allowed(m, pod_labels(pod), broker_labels, target) == (True, True), (
            f"{profile}: the echo hook cannot reach the broker {host}:{port} (pod port {target})"
        )


def test_runtime_echo_hook_is_not_rendered_for_sqs_or_without_flows(
    rendered_profiles: dict[str, helm.Manifest],
) -> None:
    assert broker_type(rendered_profiles["aws"]) == "aws-sqs-queue"
    assert "runtime" not in hook_pods(rendered_profiles["aws"]), "submit speaks RabbitMQ and Redis only"
    m = helm.render_profile("dev", set_values={"runtime.flows.enabled": False})
    assert "runtime" not in hook_pods(m), "the echo flow is built in only with flows.enabled"
    off = helm.render_profile("dev", set_values={"ide.tests.enabled": False, "runtime.tests.enabled": False})
    assert not hook_pods(off)
    ingress = [r for p in off.of_kind("NetworkPolicy") for r in p["spec"].get("ingress") or []]
    assert not any(
        peer_matches(x, {"app.kubernetes.io/component": "test"}) for r in ingress for x in r.get("from") or []
    )


@pytest.mark.parametrize("profile", profiles())
def test_helm_test_hooks_meet_the_policy_rules(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """tests/test_policy.py's rules read workloads; the hook Pods, shaped as Jobs, must pass the same rules
    (Pod Security restricted, writable paths, requests and limits, pinned images, selector labels, service links,
    one ServiceAccount per component with no token, no secret literals)."""
    m = rendered_profiles[profile]
    hooks = [as_workload(p) for p in hook_pods(m).values()]
    others = [o for o in m.objects if o["kind"] in ("ServiceAccount", "RoleBinding", "ClusterRoleBinding")]
    sample = helm.Manifest(hooks + others, source=f"profile {profile} test hooks")
    for rule in policy.CHECKS:
        check, what = policy.CHECKS[rule]
        policy.assert_none(check(sample), what)


class FakeHealth(BaseHTTPRequestHandler):
    """Answers /health_check as Langflow 1.13 does: 200 {"status": "ok", ...} or 500 {"detail": {...}}."""

    healthy = True

    def do_GET(self) -> None:
        ok = type(self).healthy
        body = {"status": "ok", "chat": "ok", "db": "ok"} if ok else {"detail": {"status": "nok", "db": "error"}}
        data = json.dumps(body).encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.mark.timeout(60)
def test_ide_health_hook_script_accepts_only_a_healthy_langflow(rendered_profiles: dict[str, helm.Manifest]) -> None:
    """The rendered hook's script, run against a fake /health_check: exit 0 on a healthy answer, non-zero on a 500
    and on a refused connection (bounded by its TIMEOUT_SECONDS)."""
    (c,) = hook_pods(rendered_profiles["dev"])["ide"]["spec"]["containers"]
    script = c["command"][-1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/health_check"

    def run(target: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HEALTH_URL": target, "TIMEOUT_SECONDS": "2"}
        return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=30)

    try:
        FakeHealth.healthy = True
        assert run(url).returncode == 0
        FakeHealth.healthy = False
        sick = run(url)
        assert sick.returncode != 0 and "500" in sick.stdout and "FAILED" in sick.stderr
        assert run("http://127.0.0.1:9/health_check").returncode != 0
    finally:
        server.shutdown()
        server.server_close()


EXTENSIONS = {
    "extraEnvVars": [{"name": "CORP_PROXY", "value": "http://proxy.{{ .Release.Namespace }}:3128"}],
    "extraEnvVarsFrom": [{"secretRef": {"name": "corp-settings"}}],
    "extraVolumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca"}}],
    "extraVolumeMounts": [{"name": "corp-ca", "mountPath": "/etc/corp-ca", "readOnly": True}],
    "initContainers": [{"name": "corp-init", "image": "example/init:1.0", "command": ["true"]}],
    "sidecars": [{"name": "corp-proxy", "image": "example/proxy:1.0"}],
    "hostAliases": [{"ip": "10.0.0.5", "hostnames": ["git.corp"]}],
    "args": ["--log-level", "debug"],
    "lifecycleHooks": {"postStart": {"exec": {"command": ["sh", "-c", "true"]}}},
}


@pytest.mark.parametrize(("component", "kind"), [("ide", "Deployment"), ("runtime", "StatefulSet")])
def test_extension_points_reach_the_pod(component: str, kind: str, tmp_path: Path) -> None:
    """Each extension point lands where Kubernetes reads it, tpl-rendered, after the chart's own entries (which
    all stay); the runtime keeps its drain preStop beside a user's postStart, and a user's preStop replaces it."""
    plain = helm.render_profile("prod").get(kind, f"lf-{component}")["spec"]["template"]["spec"]
    values = tmp_path / "ext.yaml"
    values.write_text(yaml.safe_dump({component: EXTENSIONS, "extraObjects": [EXTRA_OBJECT]}))
    m = helm.render_profile("prod", values=[values], namespace="corp")
    pod = m.get(kind, f"lf-{component}")["spec"]["template"]["spec"]
    c, c0 = (
        container({"spec": {"template": {"spec": pod}}}, "langflow"),
        container({"spec": {"template": {"spec": plain}}}, "langflow"),
    )
    assert c["env"][: len(c0["env"])] == c0["env"] and c["env"][len(c0["env"]) :] == [
        {"name": "CORP_PROXY", "value": "http://proxy.corp:3128"}
    ]
    assert c["envFrom"] == EXTENSIONS["extraEnvVarsFrom"] and c["args"] == EXTENSIONS["args"]
    assert c["volumeMounts"] == [*c0["volumeMounts"], *EXTENSIONS["extraVolumeMounts"]]
    assert pod["volumes"][: len(plain["volumes"])] == plain["volumes"]
    assert [v for v in pod["volumes"] if v not in plain["volumes"]] == EXTENSIONS["extraVolumes"]
    assert pod["initContainers"] == [*(plain.get("initContainers") or []), *EXTENSIONS["initContainers"]]
    assert pod["containers"] == [*pod["containers"][: len(plain["containers"])], *EXTENSIONS["sidecars"]]
    assert pod["hostAliases"] == EXTENSIONS["hostAliases"]
    assert c["lifecycle"]["postStart"] == EXTENSIONS["lifecycleHooks"]["postStart"]
    assert c["lifecycle"].get("preStop") == c0.get("lifecycle", {}).get("preStop"), "the chart's preStop was lost"
    assert m.get("ConfigMap", "lf-corp-settings")["data"] == {"release": "lf"}
    if c0.get("lifecycle", {}).get("preStop"):
        mine = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
        values.write_text(yaml.safe_dump({component: {"lifecycleHooks": mine}}))
        c = container(helm.render_profile("prod", values=[values]).get(kind, f"lf-{component}"), "langflow")
        assert c["lifecycle"] == mine


COMPONENTS_VALUES = ROOT / "tests/harness/values/custom-components.yaml"


def _pod_of(m: helm.Manifest, kind: str, component: str) -> dict[str, Any]:
    return m.get(kind, f"lf-{component}")["spec"]["template"]["spec"]


def _mount_of(c: dict[str, Any], name: str) -> dict[str, Any]:
    (mount,) = [v for v in c.get("volumeMounts", []) if v["name"] == name]
    return mount


@pytest.mark.parametrize(("component", "kind"), [("ide", "Deployment"), ("runtime", "StatefulSet")])
def test_custom_components_from_inline_files_reach_langflow(component: str, kind: str) -> None:
    """components.files: the chart's ConfigMap holds each module as given, mounted read-only as the category folder
    under the path LANGFLOW_COMPONENTS_PATH names; the pod template carries the ConfigMap's checksum (an edit rolls
    the pods). On the runtime the fill-component-code initContainer sees the same path (flows may use the
    components by type)."""
    given = yaml.safe_load(COMPONENTS_VALUES.read_text())[component]["components"]
    m = helm.render_profile("dev", values=[COMPONENTS_VALUES])
    cm = m.get("ConfigMap", f"lf-{component}-components")
    assert cm["data"] == given["files"]
    pod = _pod_of(m, kind, component)
    (vol,) = [v for v in pod["volumes"] if v["name"] == "components"]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    users = [container({"spec": {"template": {"spec": pod}}}, "langflow")]
    if component == "runtime":
        users.append(next(c for c in pod["initContainers"] if c["name"] == "fill-component-code"))
    for c in users:
        env = {e["name"]: e.get("value") for e in c["env"]}
        mount = _mount_of(c, "components")
        assert mount["readOnly"] is True
        assert mount["mountPath"] == f"{env['LANGFLOW_COMPONENTS_PATH']}/{given['category']}", c["name"]
    annotations = m.get(kind, f"lf-{component}")["spec"]["template"]["metadata"]["annotations"]
    changed = {component: {"components": {**given, "files": {"shout.py": "# changed"}}}}
    m2 = helm.render_profile("dev", set_values=changed)
    after = m2.get(kind, f"lf-{component}")["spec"]["template"]["metadata"]["annotations"]
    assert after["checksum/components"] != annotations["checksum/components"]
    plain = helm.render_profile("dev")
    assert f"lf-{component}-components" not in {o["metadata"]["name"] for o in plain.of_kind("ConfigMap")}
    c0 = container(plain.get(kind, f"lf-{component}"), "langflow")
    assert "LANGFLOW_COMPONENTS_PATH" not in {e["name"] for e in c0["env"]}, "no source: no components path"


@pytest.mark.parametrize(("component", "kind"), [("ide", "Deployment"), ("runtime", "StatefulSet")])
def test_custom_components_from_a_configmap_a_claim_or_an_image(component: str, kind: str) -> None:
    """The other sources: an existing ConfigMap (as the category folder), an existing PVC (read-only, the whole
    path) and an image, whose components the copy-components initContainer copies with the image's own cp into
    an emptyDir before any other initContainer (the runtime's fill step reads them)."""
    cases = {
        "configMap": ({"configMap": "{{ .Release.Name }}-my-components"}, "configMap"),
        "existingClaim": ({"existingClaim": "shared-components"}, "persistentVolumeClaim"),
        "image": ({"image": {"registry": "registry.corp", "repository": "ml/components", "tag": "1.2.0"}}, "emptyDir"),
    }
    for source, (values, volume_kind) in cases.items():
        m = helm.render_profile("dev", set_values={f"{component}.components": values})
        pod = _pod_of(m, kind, component)
        (vol,) = [v for v in pod["volumes"] if v["name"] == "components"]
        assert volume_kind in vol, (source, vol)
        c = container({"spec": {"template": {"spec": pod}}}, "langflow")
        path = {e["name"]: e.get("value") for e in c["env"]}["LANGFLOW_COMPONENTS_PATH"]
        mount = _mount_of(c, "components")
        assert mount["readOnly"] is True
        if source == "configMap":
            assert vol["configMap"]["name"] == "lf-my-components" and mount["mountPath"] == f"{path}/custom"
        if source == "existingClaim":
            assert vol["persistentVolumeClaim"] == {"claimName": "shared-components", "readOnly": True}
            assert mount["mountPath"] == path
        if source == "image":
            first = pod["initContainers"][0]
            assert first["name"] == "copy-components" and first["image"] == "registry.corp/ml/components:1.2.0"
            assert first["command"][:2] == ["cp", "-R"] and first["command"][2] == "/components/."
            assert _mount_of(first, "components")["mountPath"] == first["command"][-1]
            assert first["securityContext"]["readOnlyRootFilesystem"] is True
            assert mount["mountPath"] == path


def test_runtime_flows_from_configmaps_and_urls_reach_the_fill_step() -> None:
    """flows.configMaps and flows.urls: fetch-flows (the runtime image, restricted, the chart's fetch_flows.py)
    downloads each URL with the headers Secret mounted as files (group-readable, never env) into an emptyDir;
    fill-component-code then reads the chart's flows, each ConfigMap and the downloads, in that order."""
    values = {
        "runtime.flows.configMaps": ["{{ .Release.Name }}-team-flows", "other-flows"],
        "runtime.flows.urls": [{"name": "remote.json", "url": "https://flows.corp/{{ .Release.Name }}/remote.json"}],
        "runtime.flows.urlHeadersSecret": "flow-server-token",
    }
    m = helm.render_profile("dev", set_values=values)
    sts = m.get("StatefulSet", "lf-runtime")
    pod = sts["spec"]["template"]["spec"]
    inits = {c["name"]: c for c in pod["initContainers"]}
    names = [c["name"] for c in pod["initContainers"]]
    assert names.index("fetch-flows") < names.index("fill-component-code")
    fetch, fill = inits["fetch-flows"], inits["fill-component-code"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in fetch["volumeMounts"]}
    script = fetch["command"][1]
    cm = m.get("ConfigMap", volumes["flows-src"]["configMap"]["name"])
    shipped = (ROOT / "charts/langflow-runtime/files/fetch_flows.py").read_text().rstrip("\n")
    assert cm["data"][Path(script).name] == shipped and Path(script).parent == Path(mounts["flows-src"])
    assert fetch["command"][fetch["command"].index("--headers") + 1] == mounts["flows-headers"]
    assert fetch["command"][-1] == "remote.json=https://flows.corp/lf/remote.json"
    assert fetch["command"][-2] == mounts["flows-fetched"]
    assert volumes["flows-headers"]["secret"] == {"secretName": "flow-server-token", "defaultMode": 0o440}
    assert "flows-headers" not in {m["name"] for c in pod["containers"] + [fill] for m in c.get("volumeMounts", [])}
    assert all("valueFrom" not in e for e in fetch.get("env", [])), "no secret in env"
    assert fetch["securityContext"]["readOnlyRootFilesystem"] is True and fetch["image"] == fill["image"]
    fill_mounts = {m["name"]: m["mountPath"] for m in fill["volumeMounts"]}
    sources = fill["command"][fill["command"].index("/flows-src") : -1]
    assert sources == [fill_mounts[n] for n in ("flows-src", "flows-user-0", "flows-user-1", "flows-fetched")]
    assert [volumes[f"flows-user-{i}"]["configMap"]["name"] for i in (0, 1)] == ["lf-team-flows", "other-flows"]
    plain = helm.render_profile("dev")
    assert "fetch-flows" not in [c["name"] for c in container_specs(plain, "initContainers")]
    assert "fetch_flows.py" not in plain.get("ConfigMap", "lf-runtime-flows")["data"], "no URLs: no fetch script"


def container_specs(m: helm.Manifest, field: str) -> list[dict[str, Any]]:
    return list(m.get("StatefulSet", "lf-runtime")["spec"]["template"]["spec"].get(field) or [])


def test_s3_file_storage_reaches_the_ide_and_the_runtime_with_credentials_as_a_file() -> None:
    """global.storage s3: Langflow's storage settings from the values on every IDE and runtime container; the
    credentials Secret's key is mounted read-only as the file AWS_SHARED_CREDENTIALS_FILE names (never env); the
    prod and aws profiles keep files in S3, the aws one through pod identity (no Secret, a role on the IDE)."""
    storage = {"type": "s3", "s3": {"bucket": "acme-langflow", "prefix": "uploads", "region": "eu-central-1",
               "endpoint": "https://minio.acme:9000", "existingSecret": "acme-s3", "credentialsKey": "aws.ini",
               "tags": {"team": "ml"}}}  # fmt: skip
    m = helm.render_profile("dev", set_values={"global.storage": storage})
    for kind, name in (("Deployment", "lf-ide"), ("StatefulSet", "lf-runtime")):
        workload = m.get(kind, name)
        c = container(workload, "langflow")
        env = {e["name"]: e for e in c["env"]}
        assert {k: env[k]["value"] for k in ("LANGFLOW_STORAGE_TYPE", "LANGFLOW_OBJECT_STORAGE_BUCKET_NAME",
                "LANGFLOW_OBJECT_STORAGE_PREFIX", "AWS_REGION", "AWS_ENDPOINT_URL_S3")} == {
            "LANGFLOW_STORAGE_TYPE": "s3", "LANGFLOW_OBJECT_STORAGE_BUCKET_NAME": "acme-langflow",
            "LANGFLOW_OBJECT_STORAGE_PREFIX": "uploads", "AWS_REGION": "eu-central-1",
            "AWS_ENDPOINT_URL_S3": "https://minio.acme:9000"}, name  # fmt: skip
        assert json.loads(env["LANGFLOW_OBJECT_STORAGE_TAGS"]["value"]) == {"team": "ml"}
        assert not any("AWS_SECRET" in k or "AWS_ACCESS" in k for k in env), "credentials must not be env"
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        mount = next(m for m in c["volumeMounts"] if m["name"] == "object-storage-credentials")
        vol = volumes["object-storage-credentials"]["secret"]
        assert vol["secretName"] == "acme-s3" and vol["items"] == [{"key": "aws.ini", "path": "credentials"}]
        assert mount["readOnly"] is True
        assert env["AWS_SHARED_CREDENTIALS_FILE"]["value"] == f"{mount['mountPath']}/credentials"
    local = container(helm.render_profile("dev").get("Deployment", "lf-ide"), "langflow")
    assert {e["name"]: e.get("value") for e in local["env"]}["LANGFLOW_STORAGE_TYPE"] == "local"
    for profile in ("prod", "aws"):
        env = {e["name"]: e.get("value") for e in container(helm.render_profile(profile).get("Deployment", "lf-ide"),
                                                              "langflow")["env"]}  # fmt: skip
        assert env["LANGFLOW_STORAGE_TYPE"] == "s3" and env["LANGFLOW_OBJECT_STORAGE_BUCKET_NAME"], profile
    aws = helm.render_profile("aws")
    assert "AWS_SHARED_CREDENTIALS_FILE" not in {e["name"] for e in container(aws.get("Deployment", "lf-ide"),
                                                                                 "langflow")["env"]}  # fmt: skip
    assert "eks.amazonaws.com/role-arn" in aws.get("ServiceAccount", "lf-ide")["metadata"]["annotations"]


@pytest.mark.parametrize("profile", profiles())
def test_every_ide_replica_sees_the_same_files(profile: str) -> None:
    """Each profile whose IDE may run more than one replica keeps uploads where all of them read: S3, or one
    ReadWriteMany PVC; one replica may keep them on its own volume."""
    m = helm.render_profile(profile)
    ide = m.get("Deployment", "lf-ide")
    hpa = [h for h in m.of_kind("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "lf-ide"]
    replicas = int(hpa[0]["spec"]["maxReplicas"]) if hpa else int(ide["spec"]["replicas"])
    env = {e["name"]: e.get("value") for e in container(ide, "langflow")["env"]}
    (data,) = [v for v in ide["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
    claim = data.get("persistentVolumeClaim", {}).get("claimName")
    shared_pvc = bool(claim) and "ReadWriteMany" in m.get("PersistentVolumeClaim", claim)["spec"]["accessModes"]
    where = "s3" if env["LANGFLOW_STORAGE_TYPE"] == "s3" else "rwx-pvc" if shared_pvc else "own volume"
    assert replicas == 1 or where != "own volume", f"{profile}: {replicas} IDE replicas, each with its own files"


# (profile, values path of the workload's section, its StatefulSet, which of command/args the chart sets)
DATA_TIER_WORKLOADS = [
    ("dev", ("database", "standalone"), "lf-database", "args"),
    ("dev", ("broker", "rabbitmq"), "lf-broker", "args"),
    ("redis-queue", ("broker", "redis"), "lf-broker-redis", "command"),
    ("dev", ("vectorstore",), "lf-vectorstore", "command"),
    ("weaviate", ("vectorstore",), "lf-vectorstore", "args"),
    ("milvus", ("vectorstore",), "lf-vectorstore", "args"),
]

# (profile, kind, values path of the workload's section, its name, which of command/args the chart sets); these
# sections also take the pod's nodeSelector, tolerations, affinity and priorityClassName
OPS_WORKLOADS = [
    ("dev", "StatefulSet", ("monitoring", "bundled", "prometheus"), "lf-monitoring-prometheus", "args"),
    ("dev", "StatefulSet", ("monitoring", "bundled", "loki"), "lf-monitoring-loki", "args"),
    ("dev", "Deployment", ("monitoring", "bundled", "grafana"), "lf-monitoring-grafana", "args"),
    ("dev", "Deployment", ("monitoring", "bundled", "alertmanager"), "lf-monitoring-alertmanager", "args"),
    ("dev", "Deployment", ("monitoring", "bundled", "alloy"), "lf-monitoring-alloy", "args"),
    ("prod", "CronJob", ("database", "backup"), "lf-database-backup", "command"),
    ("prod", "Job", ("database", "restore"), "lf-database-restore", "command"),
]

# (kind, values path of the workload's section, its name, which of command/args the chart sets): the Redis
# Sentinel and HAProxy pods of the redis-queue profile; their scheduling is the broker chart's own (top level)
REDIS_HA_WORKLOADS = [
    ("StatefulSet", ("broker", "redis", "sentinel"), "lf-broker-sentinel", "command"),
    ("Deployment", ("broker", "redis", "haproxy"), "lf-broker-haproxy", "args"),
]

# values a workload needs to render at all
WORKLOAD_BASE = {"lf-database-restore": {"database": {"restore": {"enabled": True, "id": "extension-check"}}}}

SCHEDULING = {
    "nodeSelector": {"pool": "ops"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}]
            }
        }
    },
    "priorityClassName": "ops-critical",
}


def nested(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    for key in reversed(path):
        value = {key: value}
    return value


def pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    return (spec["jobTemplate"]["spec"] if workload["kind"] == "CronJob" else spec)["template"]


def check_extension_points(
    profile: str, kind: str, section: tuple[str, ...], name: str, own: str, scheduling: bool, tmp_path: Path
) -> None:
    """Every extension point of `section` lands where Kubernetes reads it, tpl-rendered, after the chart's own
    entries, and nothing of the chart's goes: the pod and its main container are the chart's plus the extensions.
    A Job's steps (the chart's init step and main container) all take the extra env, envFrom and volumeMounts;
    the chart's own command/args stay unless the user gives them, and then only the main container's change."""
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(WORKLOAD_BASE.get(name, {})))
    plain = pod_template(helm.render_profile(profile, values=[base], namespace="corp").get(kind, name))
    extras = {
        **EXTENSIONS,
        "podLabels": {"team": "data"},
        "podAnnotations": {"owner": "dba"},
        "terminationGracePeriodSeconds": 45,
        **(SCHEDULING if scheduling else {}),
    }
    extras.pop("args")
    values = tmp_path / "ext.yaml"
    values.write_text(yaml.safe_dump(nested(section, extras)))
    tpl = pod_template(helm.render_profile(profile, values=[base, values], namespace="corp").get(kind, name))
    pod, pod0 = tpl["spec"], plain["spec"]
    job = kind in ("Job", "CronJob")

    def extended(c0: dict[str, Any]) -> dict[str, Any]:
        return {
            **c0,
            "env": [*(c0.get("env") or []), {"name": "CORP_PROXY", "value": "http://proxy.corp:3128"}],
            "envFrom": EXTENSIONS["extraEnvVarsFrom"],
            "volumeMounts": [*(c0.get("volumeMounts") or []), *EXTENSIONS["extraVolumeMounts"]],
        }

    c0 = pod0["containers"][0]
    main = {**extended(c0), "lifecycle": {**(c0.get("lifecycle") or {}), **EXTENSIONS["lifecycleHooks"]}}
    steps0 = pod0.get("initContainers") or []
    assert pod == {
        **pod0,
        **(SCHEDULING if scheduling else {}),
        "terminationGracePeriodSeconds": 45,
        "hostAliases": EXTENSIONS["hostAliases"],
        "volumes": [*(pod0.get("volumes") or []), *EXTENSIONS["extraVolumes"]],
        "initContainers": [*(map(extended, steps0) if job else steps0), *EXTENSIONS["initContainers"]],
        "containers": [main, *pod0["containers"][1:], *EXTENSIONS["sidecars"]],
    }
    assert pod["containers"][0].get(own) == c0.get(own), f"the chart's {own} was lost"
    meta0 = plain["metadata"]
    assert tpl["metadata"] == {
        **meta0,
        "labels": {**meta0["labels"], "team": "data"},
        "annotations": {**(meta0.get("annotations") or {}), "owner": "dba"},
    }
    values.write_text(yaml.safe_dump(nested(section, {own: ["run-it", "my-way"]})))
    pod = pod_template(helm.render_profile(profile, values=[base, values], namespace="corp").get(kind, name))["spec"]
    assert pod["containers"][0][own] == ["run-it", "my-way"], f"the user's {own} replace the chart's"
    assert pod.get("initContainers") == pod0.get("initContainers"), "the user's command reached the chart's init step"


@pytest.mark.parametrize(("profile", "section", "name", "own"), DATA_TIER_WORKLOADS, ids=lambda v: str(v))
def test_extension_points_reach_the_data_tier_pods(
    profile: str, section: tuple[str, ...], name: str, own: str, tmp_path: Path
) -> None:
    """The standalone PostgreSQL, RabbitMQ, Redis and vector store (Qdrant, Weaviate, Milvus) pods take the same
    extension points under their own section (the vector store's: the chart's top level); the chart's preStop
    stays beside a user's postStart; the chart's own command/args stay unless the user gives them."""
    check_extension_points(profile, "StatefulSet", section, name, own, False, tmp_path)


@pytest.mark.parametrize(("profile", "kind", "section", "name", "own"), OPS_WORKLOADS, ids=lambda v: str(v))
def test_extension_points_reach_the_monitoring_and_backup_pods(
    profile: str, kind: str, section: tuple[str, ...], name: str, own: str, tmp_path: Path
) -> None:
    """The bundled Prometheus, Loki, Grafana, Alertmanager and Alloy pods and the database's backup CronJob and
    restore Job take the extension points under their own section, with the pod's scheduling keys as well."""
    check_extension_points(profile, kind, section, name, own, True, tmp_path)


@pytest.mark.parametrize(("kind", "section", "name", "own"), REDIS_HA_WORKLOADS, ids=lambda v: str(v))
def test_extension_points_reach_the_sentinel_and_haproxy_pods(
    kind: str, section: tuple[str, ...], name: str, own: str, tmp_path: Path
) -> None:
    """The Redis Sentinel and HAProxy pods take the extension points under broker.redis.sentinel and
    broker.redis.haproxy; the Sentinel's start command and HAProxy's args stay unless the user sets them."""
    check_extension_points("redis-queue", kind, section, name, own, False, tmp_path)


EXTRA_OBJECT = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "{{ .Release.Name }}-corp-settings"},
    "data": {"release": "{{ .Release.Name }}"},
}
