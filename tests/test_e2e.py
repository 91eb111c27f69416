"""End to end: the dev profile running for real on the local cluster's real node.

Containers from the images `make images` built, DNS from CoreDNS, Services through kube-proxy, probes answered by
the real processes, a flow run through RabbitMQ by a runtime pod, the UI in a real browser, `helm test`, and the
network rule (no pod reaches an address off this machine). Every name comes from the live release.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import realplatform as rp
from tests.harness.cluster import Cluster, LocalCluster
from tests.harness.node import (
    KUBELET_PORT,
    NODE_NAME,
    OWNER_FILE,
    TAINT_KEY,
    NodeError,
    RealNode,
    bridge_exists,
    host_snapshot,
    leftovers,
    reclaim_left_behind,
)
from tests.harness.paths import REPORTS, ROOT
from tests.harness.servers import free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]
RELEASE = "lf"


# what RDS-managed and other generated secrets hold: every character a URL reserves
URL_RESERVED = "@/:%#?&="


# a platform engineer's additions, through the extension points: a ConfigMap of the release (extraObjects) read as
# env (extraEnvVarsFrom) and as files (extraVolumes/extraVolumeMounts), a host alias, an env var made with tpl
EXTENSIONS = {
    "extraObjects": [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "{{ .Release.Name }}-e2e-extension"},
            "data": {"E2E_GREETING": "hello from extraObjects", "motd": "mounted by extraVolumes"},
        }
    ],
    "ide": {
        "extraEnvVars": [{"name": "E2E_RELEASE", "value": "{{ .Release.Name }}"}],
        "extraEnvVarsFrom": [{"configMapRef": {"name": "{{ .Release.Name }}-e2e-extension"}}],
        "extraVolumes": [{"name": "e2e-extension", "configMap": {"name": "{{ .Release.Name }}-e2e-extension"}}],
        "extraVolumeMounts": [{"name": "e2e-extension", "mountPath": "/etc/e2e-extension", "readOnly": True}],
        "hostAliases": [{"ip": "10.245.0.250", "hostnames": ["e2e.internal"]}],
    },
}


# a custom component shipped inline to the IDE and the runtime (components.files), and a flow that names it by type
COMPONENTS_VALUES = ROOT / "tests/harness/values/custom-components.yaml"
SHOUT_FLOW = ROOT / "tests/harness/values/flows/shout.json"
# a team's flow in a ConfigMap of their own, loaded through runtime.flows.configMaps
TEAM_FLOW = ROOT / "loadtest/flows/text-chain.json"


@pytest.fixture(scope="module")
def platform(
    kube: Cluster, real_node: RealNode | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[rp.Release]:
    """The dev profile, its database credentials from the user's own Secret, whose password holds every
    character a URL reserves (the server and every Langflow process read the same Secret), EXTENSIONS, and the
    custom component of COMPONENTS_VALUES with SHOUT_FLOW among the runtime's flows, and TEAM_FLOW from the
    user's own ConfigMap (runtime.flows.configMaps)."""
    ns = f"e2e-{secrets.token_hex(3)}"
    kube.create_namespace(ns, restricted=True)
    credentials = {"username": "langflow", "password": f"{secrets.token_hex(6)}{URL_RESERVED}%40x"}
    credentials["superuser-password"] = secrets.token_hex(12)
    kube.apply([{"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/basic-auth",
                 "metadata": {"name": "e2e-database", "namespace": ns}, "stringData": credentials}])  # fmt: skip
    extensions = tmp_path_factory.mktemp("e2e-values") / "extensions.yaml"
    kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "team-flows", "namespace": ns},
                 "data": {TEAM_FLOW.name: TEAM_FLOW.read_text()}}])  # fmt: skip
    extensions.write_text(yaml.safe_dump(EXTENSIONS))
    set_values = {"global.database.existingSecret": "e2e-database",
                  "runtime.flows.extra": {SHOUT_FLOW.name: SHOUT_FLOW.read_text()},
                  "runtime.flows.configMaps": ["team-flows"]}  # fmt: skip
    rp.install(kube, RELEASE, ns, "dev", timeout="15m", set_values=set_values, values=[extensions, COMPONENTS_VALUES])
    yield rp.Release(kube, RELEASE, ns)
    kube.helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "3m", timeout=300)
    kube.delete_namespace(ns, wait=False)


@pytest.fixture(scope="module")
def ide_url(platform: rp.Release) -> str:
    url = platform.ide_url()
    rp.wait_healthy(url, timeout=300)
    return url


def test_preflight_names_a_port_in_use_and_the_fix(tmp_path: Path) -> None:
    """A port the node needs is taken: the start stops before anything runs, naming the port and what to do."""
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("0.0.0.0", KUBELET_PORT))
        holder.listen()
    except OSError:  # a node of this session already holds it: the check must see that too
        holder.close()
    try:
        node = RealNode(tmp_path / "node", tmp_path / "pki", tmp_path / "kubeconfig", 1, progress=lambda _: None)
        with pytest.raises(NodeError, match=rf"port {KUBELET_PORT} \(kubelet\) is in use: stop what listens there"):
            node.preflight()
        assert not (tmp_path / "node").exists(), "preflight must not start or create anything"
    finally:
        holder.close()


def test_real_node_joined_next_to_kwok(kube: Cluster, real_node: RealNode | None) -> None:
    if real_node is None:
        pytest.skip("the real node is the local cluster's; on kind/existing every node is real")
    nodes = json.loads(kube.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    node = next(n for n in nodes if n["metadata"]["name"] == NODE_NAME)
    info = node["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"].startswith("containerd://1."), info
    server = json.loads(kube.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    assert info["kubeletVersion"] == server, (info, server)  # built from the control plane's own module
    assert any(t["key"] == TAINT_KEY and t["effect"] == "NoSchedule" for t in node["spec"].get("taints", []))
    assert any(n["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake" for n in nodes)


def test_every_pod_on_the_real_node_runs_in_containerd(kube: Cluster, platform: rp.Release) -> None:
    pods = rp.pods_on_node(kube, platform.namespace, NODE_NAME)
    names = {p["metadata"]["name"] for p in pods}
    # the workloads the overlay puts on the real node: IDE, runtime, broker, database
    for workload in (platform.ide_deployment(), platform.runtime()):
        sel = workload["spec"]["selector"]["matchLabels"]
        assert any(all(p["metadata"]["labels"].get(k) == v for k, v in sel.items()) for p in pods), (
            f"no pod of {workload['metadata']['name']} on {NODE_NAME}: {sorted(names)}"
        )
    timings: dict[str, float] = {}
    for pod in pods:
        if pod["metadata"].get("annotations", {}).get("helm.sh/hook"):
            continue
        status = pod["status"]
        assert status["phase"] == "Running", (pod["metadata"]["name"], status["phase"])
        for cs in status["containerStatuses"]:
            assert cs["ready"], (pod["metadata"]["name"], cs["name"], cs.get("state"))
            assert cs["containerID"].startswith("containerd://"), cs["containerID"]
        timings[pod["metadata"]["name"]] = rp.ready_seconds(pod)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "e2e-pod-ready.json").write_text(json.dumps(timings, indent=1))


def test_probes_are_answered_by_the_real_langflow(kube: Cluster, platform: rp.Release, ide_url: str) -> None:
    """kubectl exec into the IDE container (apiserver -> kubelet -> containerd) and ask Langflow itself."""
    pod = platform.pods_of(platform.ide_deployment())[0]
    langflow = next(c for c in pod["spec"]["containers"] if c["name"] == "langflow")
    probe = langflow["readinessProbe"]["httpGet"]
    port = next(p["containerPort"] for p in langflow["ports"] if p["name"] == probe["port"])
    code = f"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}{probe['path']}').read().decode())"
    out = kube.kubectl("exec", "-n", platform.namespace, pod["metadata"]["name"], "-c", "langflow", "--",
                       "python", "-c", code, timeout=60).stdout  # fmt: skip
    assert "ok" in out, out
    logs = kube.kubectl(
        "logs", "-n", platform.namespace, pod["metadata"]["name"], "-c", "langflow", "--tail=200"
    ).stdout
    assert logs.strip(), "kubectl logs returned nothing from the IDE container"


def test_a_fresh_ide_pod_is_warm_before_it_is_ready(kube: Cluster, platform: rp.Release, ide_url: str) -> None:
    """A restarted IDE pod became Ready only after its startup probe had requested the component catalogue
    (the record it left is older than the Ready condition), with no credential in the probe; the first
    /api/v1/all a user then sends to that pod costs at most 1.5x a warm one (issue 18, item 1)."""
    deployment = platform.ide_deployment()
    ns = platform.namespace
    langflow = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "langflow")
    command = langflow["startupProbe"]["exec"]["command"]
    user, password = platform.login()
    assert password not in json.dumps(langflow["startupProbe"]), "a credential in the probe's definition"
    options = {command[i]: command[i + 1] for i in range(2, len(command) - 1) if command[i].startswith("--")}
    record_path = options["--record"]
    warm_paths = [a for a in command[2:] if not a.startswith("--") and a not in options.values()]
    assert "/api/v1/all" in warm_paths, command
    # One fresh start decides when it is within the bound; a single slow first request on this shared 2-core
    # machine (cold CI once measured 3.3x while the probe's own two requests were warm) takes two more fresh
    # starts, and the median of the three decides: a pod that is not warm when Ready fails all three.
    starts: list[dict[str, Any]] = []
    for _ in range(3):
        # the old pod's graceful stop ends before measuring (its CPU) and before the next tests (they expect one pod)
        pod = rp.restart_deployment(kube, ns, deployment)
        # this pod, not the Service (the old one may still serve)
        first, warm = rp.first_and_warm_ms(rp.pod_url(pod), user, password, "/api/v1/all", warm=7, timeout=60)
        record = json.loads(
            kube.kubectl("exec", "-n", ns, pod["metadata"]["name"], "-c", "langflow", "--", "cat", record_path).stdout
        )
        ready_at = rp.ready_at(pod)
        assert record["at"] <= ready_at + 1, f"warm-up recorded at {record['at']}, after Ready at {ready_at}"
        assert set(record["ms"]) == set(warm_paths), record
        starts.append({"first_ms": first, "warm_ms": warm, "ratio": round(first / statistics.median(warm), 2),
                       "probe_ms": record["ms"], "ready_s": rp.ready_seconds(pod),
                       "phases_s": rp.start_phases(pod)})  # fmt: skip
        phases = starts[-1]["phases_s"]
        assert list(phases)[-1] == "ready" and phases["ready"] == round(starts[-1]["ready_s"], 1), phases
        inits = [v for k, v in phases.items() if k.startswith("init ")]
        assert phases["langflow started"] >= max(inits, default=0.0), phases
        if len(starts) == 1 and starts[0]["ratio"] <= 1.5:
            break
    ratio = statistics.median(s["ratio"] for s in starts)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "e2e-ide-warmup.json").write_text(json.dumps({"ratio": ratio, "starts": starts}, indent=1))
    assert ratio <= 1.5, f"the first /api/v1/all on a fresh pod took {ratio:.2f}x a warm one (median): {starts}"


def test_runtime_waited_for_the_ides_migrations_and_logs_are_json(kube: Cluster, platform: rp.Release) -> None:
    """Installed together as `helm install` does, the runtime's wait-for-migrations initContainer held it back
    until the IDE had migrated the real PostgreSQL to the image's Alembic head; both Langflows log JSON records
    (langflow.logFormat json, for Loki)."""
    pod = sorted(platform.runtime_pods())[0]
    wait_log = kube.kubectl("logs", "-n", platform.namespace, pod, "-c", "wait-for-migrations").stdout
    assert any(line.startswith("alembic_version = ") for line in wait_log.splitlines()), f"it did not wait:\n{wait_log}"
    assert "schema migrated: alembic_version = " in wait_log, wait_log
    ide_pod = platform.pods_of(platform.ide_deployment())[0]["metadata"]["name"]
    for name in (ide_pod, pod):
        lines = kube.kubectl("logs", "-n", platform.namespace, name, "-c", "langflow").stdout.splitlines()
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(records) >= 10 and all({"event", "level", "timestamp"} <= r.keys() for r in records), name


def test_a_database_password_with_url_reserved_characters_works(
    kube: Cluster, platform: rp.Release, ide_url: str
) -> None:
    """The user's Secret (as RDS makes them) holds '@/:%#?&=': PostgreSQL was initialised with it and every
    Langflow connects with it (the IDE reports its database healthy; the runtime's wait had it too)."""
    ide = platform.ide_deployment()
    env = platform.container_env(ide, "langflow")
    password = rp.secret_value(kube, platform.namespace, env["LF_DATABASE_PASSWORD"])
    assert set(URL_RESERVED) <= set(password), "the release does not read the Secret the fixture made"
    health = rp.wait_healthy(ide_url, timeout=120)
    assert health.get("db") == "ok", health
    (pg,) = rp.pods(kube, platform.namespace, label_selector="app.kubernetes.io/component=postgresql")
    query = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'langflow'"
    psql = f'PGPASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")" psql -U postgres -tAc "{query}"'
    out = kube.kubectl("exec", "-n", platform.namespace, pg["metadata"]["name"], "-c", "postgresql", "--",
                       "sh", "-c", psql, timeout=60).stdout  # fmt: skip
    assert int(out.strip()) >= 1, f"no session of the application user on the server: {out!r}"


def test_extension_points_reach_the_running_container(kube: Cluster, platform: rp.Release, ide_url: str) -> None:
    """What EXTENSIONS added is what the kubelet gave the running IDE container: the env (from tpl and from the
    release's own ConfigMap), the mounted file and the host alias."""
    (pod,) = rp.pods(kube, platform.namespace, label_selector="app.kubernetes.io/component=ide")
    script = (
        "import os, socket; "
        "print(os.environ['E2E_RELEASE'], os.environ['E2E_GREETING'], open('/etc/e2e-extension/motd').read(), "
        "socket.gethostbyname('e2e.internal'), sep='|')"
    )
    out = kube.kubectl("exec", "-n", platform.namespace, pod["metadata"]["name"], "-c", "langflow", "--",
                       "python", "-c", script, timeout=60).stdout.strip()  # fmt: skip
    data = EXTENSIONS["extraObjects"][0]["data"]
    assert out.split("|") == [RELEASE, data["E2E_GREETING"], data["motd"], "10.245.0.250"], out


@pytest.fixture(scope="module")
def ide_session(platform: rp.Release, ide_url: str) -> Iterator[Any]:
    """One login through the Service for the tests below (Langflow allows 5 logins a minute; the module's other
    logins are the warm-up, browser and capacity tests')."""
    user, password = platform.login()
    with rp.api_session(ide_url, user, password) as s:
        yield s


def test_ide_login_and_flow_created_through_the_service(ide_session: Any, ide_url: str) -> None:
    name = f"e2e-{secrets.token_hex(3)}"
    r = ide_session.post(
        f"{ide_url}/api/v1/flows/", json={"name": name, "data": {"nodes": [], "edges": []}}, timeout=30
    )
    assert r.status_code == 201, r.text[:300]
    listed = ide_session.get(f"{ide_url}/api/v1/flows/", params={"get_all": "true"}, timeout=30).json()
    assert name in [f["name"] for f in listed]


def test_a_custom_component_is_in_the_ide_catalogue(ide_session: Any, ide_url: str) -> None:
    """components.files: the IDE's Langflow lists the shipped component under its category with the shipped code,
    keyed by its palette id (Langflow 1.13 keys a LANGFLOW_COMPONENTS_PATH component `ext:<bundle>:<Class>@extra`)."""
    given = yaml.safe_load(COMPONENTS_VALUES.read_text())["ide"]["components"]
    catalogue = ide_session.get(f"{ide_url}/api/v1/all", timeout=120).json()
    category = catalogue.get(given["category"]) or {}
    shipped = given["files"]["shout.py"]
    keys = [k for k, v in category.items() if ((v.get("template") or {}).get("code") or {}).get("value") == shipped]
    assert len(keys) == 1, (sorted(catalogue), sorted(category))
    class_name = re.search(r"^class (\w+)\(", shipped, re.M).group(1)  # type: ignore[union-attr]
    assert keys[0] in (class_name, f"ext:{given['category']}:{class_name}@extra"), keys


def test_a_job_through_rabbitmq_is_run_by_a_runtime_pod(platform: rp.Release) -> None:
    text = f"hello e2e {secrets.token_hex(4)}"
    result = rp.run_job(platform, "echo", text, timeout=240)
    assert result["status"] == "ok", result
    assert result["worker"] in platform.runtime_pods(), (result["worker"], platform.runtime_pods())
    assert text in json.dumps(result["outputs"]), result["outputs"]


def test_a_flow_using_a_custom_component_runs_on_a_runtime_pod(platform: rp.Release) -> None:
    """components.files: the flow that names the shipped component by type only (its code filled on the runtime pod
    from the shipped module) runs through the queue on a runtime pod, doing what the component does."""
    text = f"quiet words {secrets.token_hex(3)}"
    result = rp.run_job(platform, json.loads(SHOUT_FLOW.read_text())["endpoint_name"], text, timeout=240)
    assert result["status"] == "ok", result
    assert result["worker"] in platform.runtime_pods(), (result["worker"], platform.runtime_pods())
    assert text.upper() in json.dumps(result["outputs"]), result["outputs"]


def test_a_flow_from_a_users_configmap_runs_on_a_runtime_pod(platform: rp.Release) -> None:
    """runtime.flows.configMaps: the flow of the user's ConfigMap (not the chart's) was filled and loaded by
    the runtime pod and does its string work there (the prompt around the input, cleaned and upper-cased)."""
    text = f"team   flow ,  {secrets.token_hex(3)}"
    result = rp.run_job(platform, json.loads(TEAM_FLOW.read_text())["endpoint_name"], text, timeout=240)
    assert result["status"] == "ok", result
    assert result["worker"] in platform.runtime_pods(), (result["worker"], platform.runtime_pods())
    assert " ".join(text.replace(" ,", ",").split()).upper() in json.dumps(result["outputs"]), result["outputs"]


def test_metrics_server_reads_the_real_kubelet(kube: Cluster, platform: rp.Release) -> None:
    pod = platform.runtime_pods()[0]
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{platform.namespace}/pods/{pod}"

    def usage() -> dict[str, Any] | None:
        proc = kube.kubectl("get", "--raw", path, check=False, timeout=20)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    metrics = wait_for(usage, 120, f"metrics.k8s.io for {pod}", interval=5)
    langflow = next(c for c in metrics["containers"] if c["name"] == "langflow")
    from kubernetes.utils import parse_quantity

    mem = langflow["usage"]["memory"]
    assert parse_quantity(mem) > 100 * 2**20, f"Langflow's working set is {mem}: not a real process?"
    # what the running dev platform costs on this machine, from the same API (pods on the real node + the node)
    ns_metrics = json.loads(
        kube.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{platform.namespace}/pods").stdout
    )
    on_node = {p["metadata"]["name"] for p in rp.pods_on_node(kube, platform.namespace, NODE_NAME)}
    pods = {
        m["metadata"]["name"]: {
            "cpu_m": round(sum(float(parse_quantity(c["usage"]["cpu"])) for c in m["containers"]) * 1000),
            "memory_mib": round(sum(float(parse_quantity(c["usage"]["memory"])) for c in m["containers"]) / 2**20),
        }
        for m in ns_metrics["items"]
        if m["metadata"]["name"] in on_node
    }
    node = json.loads(kube.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE_NAME}").stdout)
    report = {
        "pods": pods,
        "pods_total": {k: sum(p[k] for p in pods.values()) for k in ("cpu_m", "memory_mib")},
        "node": {
            "cpu_m": round(float(parse_quantity(node["usage"]["cpu"])) * 1000),
            "memory_mib": round(float(parse_quantity(node["usage"]["memory"])) / 2**20),
        },
    }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "e2e-resources.json").write_text(json.dumps(report, indent=1))
    assert report["pods_total"]["memory_mib"] > 0 and len(pods) == len(on_node), report


def test_helm_test_passes_on_the_real_node(kube: Cluster, platform: rp.Release, ide_url: str) -> None:
    out = kube.helm("test", RELEASE, "-n", platform.namespace, "--timeout", "5m", "--logs", timeout=400)
    assert "Phase:          Succeeded" in out or "Succeeded" in out, out
    assert "Failed" not in out, out


def test_browser_logs_in_and_sees_the_flow_list(platform: rp.Release, ide_url: str, kube: Cluster) -> None:
    from playwright.sync_api import sync_playwright

    assert kube.workdir is not None
    port = free_port()
    relay = rp.Relay(kube.workdir, "e2e-browser")
    url = relay.start(port, ide_url.removeprefix("http://"))
    user, password = platform.login()
    name = f"browser-{secrets.token_hex(3)}"
    with rp.api_session(ide_url, user, password) as s:
        r = s.post(f"{ide_url}/api/v1/flows/", json={"name": name, "data": {"nodes": [], "edges": []}}, timeout=30)
        assert r.status_code == 201, r.text[:300]
    REPORTS.mkdir(exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=flags)
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(url)
            page.get_by_placeholder("Username").fill(user)
            page.get_by_placeholder("Password").fill(password)
            page.get_by_role("button", name="Sign In").click()
            page.wait_for_url(lambda u: "login" not in u, timeout=60_000)
            page.wait_for_load_state("networkidle")
            page.get_by_text(name).wait_for(timeout=60_000)  # the flow list shows the flow made through the API
            page.screenshot(path=str(REPORTS / "e2e-ide.png"), full_page=True)
            body = page.inner_text("body")
        finally:
            browser.close()
    assert "Sign In" not in body, body[:500]
    assert name in body and "New Flow" in body, body[:500]


def test_capacity_steps_are_measured_on_the_ide_pods_cgroup(
    kube: Cluster, platform: rp.Release, ide_url: str, tmp_path: Path
) -> None:
    """loadtest.capacity's measurement on the running IDE pod, two short steps (issue 18, item 2): each step has
    requests, a p95 and the cores the pod's own cgroup used; the capacity is the largest step before the first
    that missed 100 ms or had errors, and users per core divide it by the pod's CPU limit."""
    from kubernetes.utils import parse_quantity

    from loadtest import capacity

    user, password = platform.login()
    deployment = platform.ide_deployment()
    (pod,) = platform.pods_of(deployment)
    system = capacity.System("ours", ide_url, pod, user, password, cpu_limit=capacity.cpu_limit(pod),
                             deployment=deployment)  # fmt: skip
    r = capacity.measure({"ours": system}, [2, 4], 12.0, 3.0, tmp_path, (1.0, 2.0))["ours"]  # one login
    limit = next(c for c in pod["spec"]["containers"] if c["name"] == "langflow")["resources"]["limits"]["cpu"]
    assert r["cpu_limit"] == float(parse_quantity(limit))
    assert [s["users"] for s in r["steps"]] == [2, 4]
    for s in r["steps"]:
        assert s["requests"] > 0 and s["p95_ms"] is not None, s
        assert s["cores_used"] is not None and 0 < s["cores_used"] <= r["cpu_limit"] + 0.05, s
    within = 0
    for s in r["steps"]:
        if s["errors"] or s["p95_ms"] >= capacity.TARGET_P95_MS:
            break
        within = s["users"]
    assert r["users_p95_100ms"] == within, r
    assert r["users_per_core_p95_100ms"] == round(within / r["cpu_limit"], 1)


# ---------------------------------------------------------------------------------- load: make loadtest HOST=<url>
# a short run of the load report's scenarios on this platform: 10 IDE users and 1 flow/s (the seed / 100), 20 s, then
# 10 s of queued runs
LOAD_ARGS = ["--duration", "20", "--queue-duration", "10", "--scale", "100", "--think", "1", "3", "--no-py-spy"]
LOAD_OUT = REPORTS / "e2e-load"


@pytest.fixture(scope="module")
def load_report(kube: Cluster, platform: rp.Release, ide_url: str, ide_session: Any) -> dict[str, Any]:
    """`loadtest.run --host` (what `make loadtest HOST=<url>` runs) against this release: the IDE users through the
    IDE Service on the module's session (none logs in: Langflow allows 5 logins a minute), synchronous echo runs
    on a runtime pod with the runtime's API key from its Secret, queued runs through the broker Service."""
    from loadtest import run
    from loadtest.throughput import amqp_url

    runtime = platform.runtime()
    api_key = rp.secret_value(kube, platform.namespace, platform.container_env(runtime, "langflow")["LANGFLOW_API_KEY"])
    user, password = platform.login()
    token = ide_session.headers["Authorization"].removeprefix("Bearer ")
    runtime_url = rp.pod_url(platform.pods_of(runtime)[0])
    argv = [*LOAD_ARGS, "--host", ide_url, "--runtime-host", runtime_url, "--username", user, "--password", password,
            "--api-key", api_key, "--access-token", token, "--amqp-url", amqp_url(platform),
            "--queue", platform.broker()["queue"], "--flows", "echo", "--out", str(LOAD_OUT)]  # fmt: skip
    assert run.main(argv) == 0
    return json.loads((LOAD_OUT / "load.json").read_text())


@pytest.mark.load
def test_load_report_has_every_figure(load_report: dict[str, Any]) -> None:
    for key in ("runtime_p95_ms", "ide_p95_ms", "flows_per_s", "error_rate", "requests", "users"):
        assert isinstance(load_report[key], int | float), f"load.json: {key} = {load_report[key]!r}"
    assert load_report["requests"] > 0 and load_report["users"] > 0
    assert 0 < load_report["ide_p95_ms"] < 60_000 and 0 < load_report["runtime_p95_ms"] < 60_000
    assert {t["target"].split(" ")[0] for t in load_report["targets"]} >= {"runtime", "IDE", "error"}


@pytest.mark.load
def test_load_numbers_agree_with_locust_and_samples(load_report: dict[str, Any]) -> None:
    import csv

    from loadtest.report import Samples

    # Locust writes its stats before the users' last in-flight requests end; the samples include them
    with (LOAD_OUT / "load-ours_stats.csv").open() as f:
        locust_total = int({r["Name"]: r for r in csv.DictReader(f)}["Aggregated"]["Request Count"])
    assert locust_total <= load_report["requests"] <= locust_total + load_report["users"], locust_total
    samples = Samples.load(LOAD_OUT / "load-ours.samples.jsonl")
    runs = sorted(r["ms"] for r in samples.of("runtime:"))
    assert runs and runs[0] <= load_report["runtime_p95_ms"] <= runs[-1]
    assert max(u for _, u in samples.users) == load_report["users"]


@pytest.mark.load
def test_load_flows_ran_at_the_offered_rate_without_errors(load_report: dict[str, Any]) -> None:
    ours = load_report["details"]["ours"]
    offered = ours["load"]["runtime_rate"]
    assert load_report["flows_per_s"] >= 0.5 * offered, f"{load_report['flows_per_s']} flows/s of {offered} offered"
    failing = {k: v for k, v in ours["endpoints"].items() if v["failures"]}
    assert load_report["error_rate"] < 0.01, f"error rate {load_report['error_rate']:.2%}; failing: {failing}"
    assert not any(k.startswith("ide:login") for k in ours["endpoints"]), "a simulated user logged in"


@pytest.mark.load
def test_load_queued_runs_come_back_through_the_runtime_pods(load_report: dict[str, Any]) -> None:
    q = load_report["queue"]
    assert q is not None, "no queued scenario ran"
    assert q["requests"] > 0 and q["error_rate"] < 0.01, q["endpoints"]
    assert q["queue_p95_ms"] > 0 and q["flows_per_s"] > 0


@pytest.mark.load
def test_load_page_shows_every_target_and_the_plots(load_report: dict[str, Any]) -> None:
    """The Locust HTML, the plots and reports/load.html from this run: self-contained, each target of load.json."""
    import html

    from loadtest import page

    assert "runtime:run" in (LOAD_OUT / "load-ours.html").read_text()
    for png in ("load-latency.png", "load-throughput.png"):
        data = (LOAD_OUT / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png
    assert page.main(["--reports", str(LOAD_OUT)]) == 0
    text = (LOAD_OUT / "load.html").read_text()
    for t in load_report["targets"]:
        assert html.escape(t["target"]) in text and html.escape(str(t["ours"])) in text, t
    assert text.count("data:image/png;base64,") >= 2, "the scenario's plots are not embedded"
    assert 'src="http' not in text and 'href="http' not in text, "the page must not load anything from the network"


def test_a_pod_cannot_leave_this_machine(kube: Cluster, platform: rp.Release, real_node: RealNode | None) -> None:
    """Connect to 192.0.2.1 (TEST-NET-1, outside the pod/Service ranges) from a pod on the real node: refused or
    unreachable within 2 s; the kubernetes Service (through kube-proxy) and cluster DNS answer from the same pod."""
    if real_node is None:
        pytest.skip("the network rule concerns the local cluster's real node")
    image = next(
        c["image"] for c in platform.runtime()["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"
    )
    code = (
        "import socket, json\n"
        "def tcp(h, p):\n"
        "    try:\n"
        "        socket.create_connection((h, p), timeout=2).close(); return 'open'\n"
        "    except OSError as e:\n"
        "        return type(e).__name__ + ': ' + str(e)\n"
        "print(json.dumps({'outside': tcp('192.0.2.1', 80), 'outside_dns': tcp('1.1.1.1', 53),\n"
        "  'api': tcp('kubernetes.default.svc.cluster.local', 443),\n"
        "  'dns': socket.gethostbyname('kubernetes.default.svc.cluster.local')}))\n"
    )
    name = f"netcheck-{secrets.token_hex(3)}"
    tolerations = platform.runtime()["spec"]["template"]["spec"]["tolerations"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": platform.namespace},
        "spec": {
            "restartPolicy": "Never",
            "nodeName": NODE_NAME,
            "tolerations": tolerations,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "check",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", code],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    kube.apply([pod])
    wait_for(
        lambda: (
            json.loads(kube.kubectl("get", "pod", name, "-n", platform.namespace, "-o", "json").stdout)["status"][
                "phase"
            ]
            in ("Succeeded", "Failed")
        ),
        90,
        f"pod {name} to finish",
    )
    out = json.loads(kube.kubectl("logs", name, "-n", platform.namespace).stdout.strip().splitlines()[-1])
    assert out["outside"] != "open" and out["outside_dns"] != "open", out
    assert out["api"] == "open", out
    kubernetes_ip = json.loads(kube.kubectl("get", "service", "kubernetes", "-n", "default", "-o", "json").stdout)
    assert out["dns"] == kubernetes_ip["spec"]["clusterIP"], out


@pytest.mark.last
def test_cluster_down_leaves_nothing_behind(kube: Cluster, real_node: RealNode | None) -> None:
    """Stop the real node the way `make cluster-down` does, then look for anything left on the host."""
    if real_node is None or kube.workdir is None:
        pytest.skip("the real node is the local cluster's")
    snapshot = real_node._state().get("snapshot") or host_snapshot()
    LocalCluster(kube.workdir).node().down()
    left = leftovers(real_node.workdir, snapshot)
    assert left == [], left


@pytest.mark.last
def test_a_killed_node_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    """A node whose daemons were killed, not stopped (a CI job or a session cut short), leaves its bridge, its
    firewall table and a containerd shim behind. The next node's preflight removes them, from the killed node's
    own snapshot, and refuses while a recorded daemon of it still runs."""
    assert not bridge_exists(), "the previous test stopped the node"
    killed = RealNode(tmp_path / "node", tmp_path, tmp_path / "kubeconfig", 0, progress=lambda _: None)
    snapshot = host_snapshot()
    # a process named like a daemon the node records (still running) and one like a shim naming the node's folder
    daemon = subprocess.Popen(["sleep", "300"])
    shim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(killed.workdir)])
    try:
        killed._save(snapshot=snapshot, pids={"sleep": daemon.pid}, started=time.time())
        OWNER_FILE.parent.mkdir(parents=True, exist_ok=True)
        OWNER_FILE.write_text(str(killed.workdir))
        killed._network()
        assert bridge_exists() and leftovers(killed.workdir, snapshot) != []
        refusal = reclaim_left_behind(progress=lambda _: None)
        assert refusal is not None and "sleep" in refusal and "make cluster-down" in refusal, refusal
        assert bridge_exists(), "a node whose daemon runs is left alone"
        daemon.kill()
        daemon.wait(timeout=10)
        assert reclaim_left_behind(progress=lambda _: None) is None
        assert shim.wait(timeout=10) == -signal.SIGKILL
        assert leftovers(killed.workdir, snapshot) == []
        assert not OWNER_FILE.exists()
    finally:
        for proc in (daemon, shim):
            proc.kill()
        RealNode(killed.workdir, tmp_path, tmp_path / "kubeconfig", 0, progress=lambda _: None).down(quiet=True)
