"""The platform running for real: the dev profile on the local cluster's real node, reached from this machine.

Used by `make demo` and the `e2e` layer. Every name and credential comes from the live release (its rendered
manifest, its pods' env and the Secrets they reference), never from a copy of the chart:

- `install()`: `helm upgrade --install` of the umbrella with a profile (+ the real-node overlay on `local`);
- `Release`: the objects of a release found by their labels (IDE Service, runtime StatefulSet, broker Service);
- `Relay`: a local port on 127.0.0.1 forwarded to a Service's ClusterIP (socat; goes through kube-proxy),
  kept running after the demo and stopped by `make cluster-down`;
- `run_job()`: one flow-run job published to the broker the runtime consumes, and its result (with the
  `worker` that ran it) read from a reply queue.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .cluster import Cluster
from .daemons import pid_alive, stop_pid
from .helm import value_args
from .node import node_overlay
from .paths import UMBRELLA, profile_file
from .servers import wait_for

RELAYS_FILE = "relays.json"


class PlatformError(RuntimeError):
    """The platform did not install, answer or run a job (the message names the step)."""


def values_files(profile: str, cluster_kind: str) -> list[Path]:
    """The profile, plus the harness overlay that puts the buildable components on the real node (local only)."""
    files = [profile_file(profile)]
    if cluster_kind == "local":
        files.append(node_overlay())
    return files


def install(
    cluster: Cluster,
    release: str,
    namespace: str,
    profile: str = "dev",
    *,
    timeout: str = "10m",
    set_values: dict[str, Any] | None = None,
    values: Sequence[Path] = (),
) -> str:
    """helm upgrade --install the umbrella chart with --wait; returns helm's output (the NOTES). `values`: the
    caller's values files, after the profile's."""
    args = ["upgrade", "--install", release, str(UMBRELLA), "-n", namespace, "--wait", "--timeout", timeout]
    args += value_args([*values_files(profile, cluster.kind), *values], set_values)
    try:
        return cluster.helm(*args, timeout=3600)
    except Exception as exc:
        raise PlatformError(f"helm upgrade --install {release} (profile {profile}) failed: {exc}") from exc


def render(
    cluster: Cluster, release: str, namespace: str, profile: str = "dev", set_values: dict[str, Any] | None = None
) -> str:
    """What a GitOps renderer (Argo CD, Flux's post-renderers, `helm template | kubectl apply`) applies: the umbrella
    rendered offline (no lookup, hooks as plain objects; no `helm test` pods), with install's values files."""
    args = ["template", release, str(UMBRELLA), "-n", namespace, "--skip-tests"]
    return cluster.helm(*args, *value_args(values_files(profile, cluster.kind), set_values), timeout=300)


def apply_and_wait(cluster: Cluster, namespace: str, text: str, *, timeout: float = 900) -> Release:
    """kubectl apply a rendered release, then wait for every Deployment and StatefulSet of it to roll out."""
    release_name = next(
        d["metadata"]["labels"]["app.kubernetes.io/instance"]
        for d in yaml.safe_load_all(text)
        if d and "app.kubernetes.io/instance" in (d["metadata"].get("labels") or {})
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=text, timeout=300)
    deadline = time.monotonic() + timeout
    for kind in ("deployments", "statefulsets"):
        items = json.loads(cluster.kubectl("get", kind, "-n", namespace, "-o", "json").stdout)["items"]
        for item in items:
            left = max(10, int(deadline - time.monotonic()))
            proc = cluster.kubectl("rollout", "status", f"{kind}/{item['metadata']['name']}", "-n", namespace,
                                   f"--timeout={left}s", check=False, timeout=left + 30)  # fmt: skip
            if proc.returncode != 0:
                raise PlatformError(f"{kind}/{item['metadata']['name']} did not roll out: {proc.stderr.strip()}")
    return Release(cluster, release_name, namespace)


def secret_value(cluster: Cluster, namespace: str, ref: dict[str, Any]) -> str:
    """The value a container env entry's secretKeyRef points at."""
    sel = ref["secretKeyRef"]
    out = cluster.kubectl("get", "secret", sel["name"], "-n", namespace, "-o", "json")
    return base64.b64decode(json.loads(out.stdout)["data"][sel["key"]]).decode()


@dataclass
class Release:
    """A release's live objects, found by the chart's own labels."""

    cluster: Cluster
    name: str
    namespace: str

    def _get(self, kind: str, component: str, name_label: str | None = None) -> dict[str, Any]:
        sel = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"
        if name_label:
            sel += f",app.kubernetes.io/name={name_label}"
        items = json.loads(self.cluster.kubectl("get", kind, "-n", self.namespace, "-l", sel, "-o", "json").stdout)
        items = items["items"]
        if kind == "services":
            items = [i for i in items if i["spec"].get("clusterIP") not in (None, "None")]
        if len(items) != 1:
            raise PlatformError(
                f"expected one {kind} with labels {sel}, found {[i['metadata']['name'] for i in items]}"
            )
        return items[0]

    def ide_service(self) -> dict[str, Any]:
        return self._get("services", "ide")

    def ide_deployment(self) -> dict[str, Any]:
        return self._get("deployments", "ide")

    def runtime(self) -> dict[str, Any]:
        return self._get("statefulsets", "runtime")

    def broker_service(self) -> dict[str, Any]:
        return self._get("services", "rabbitmq", "broker")

    def ide_url(self) -> str:
        svc = self.ide_service()
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
        return f"http://{svc['spec']['clusterIP']}:{port}"

    def container_env(self, workload: dict[str, Any], container: str) -> dict[str, Any]:
        spec = workload["spec"]["template"]["spec"]
        c = next(c for c in spec["containers"] if c["name"] == container)
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}

    def login(self) -> tuple[str, str]:
        """The superuser the IDE creates at start and its generated password (from the Secret the pod reads)."""
        env = self.container_env(self.ide_deployment(), "langflow")
        return env["LANGFLOW_SUPERUSER"], secret_value(self.cluster, self.namespace, env["LANGFLOW_SUPERUSER_PASSWORD"])

    def broker(self) -> dict[str, str]:
        """How the runtime's worker reaches the broker: credentials from its Secret, queue from its env; the host
        is the broker Service's ClusterIP (this machine reaches Services through kube-proxy)."""
        env = self.container_env(self.runtime(), "worker")
        svc = self.broker_service()
        port = next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "amqp")
        return {
            "host": svc["spec"]["clusterIP"],
            "port": str(port),
            "username": secret_value(self.cluster, self.namespace, env["LF_BROKER_USERNAME"]),
            "password": secret_value(self.cluster, self.namespace, env["LF_BROKER_PASSWORD"]),
            "queue": env["LF_BROKER_QUEUE"],
        }

    def pods_of(self, workload: dict[str, Any]) -> list[dict[str, Any]]:
        """The live pods a workload's selector selects."""
        sel = ",".join(f"{k}={v}" for k, v in workload["spec"]["selector"]["matchLabels"].items())
        return pods(self.cluster, self.namespace, label_selector=sel)

    def runtime_pods(self) -> list[str]:
        return [p["metadata"]["name"] for p in self.pods_of(self.runtime())]


def run_job(release: Release, flow: str, input_value: str, timeout: float = 180) -> dict[str, Any]:
    """Publish one job to the runtime's queue with a reply queue of our own; return the worker's result."""
    import pika

    b = release.broker()
    creds = pika.PlainCredentials(b["username"], b["password"])
    params = pika.ConnectionParameters(
        b["host"], int(b["port"]), "/", creds, socket_timeout=10, blocked_connection_timeout=30
    )
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        reply = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        job_id = str(uuid.uuid4())
        body = {"job_id": job_id, "flow": flow, "input_value": input_value, "reply_to": reply}
        ch.basic_publish(
            "", b["queue"], json.dumps(body).encode(),
            pika.BasicProperties(delivery_mode=2, correlation_id=job_id, content_type="application/json"),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            method, _props, payload = ch.basic_get(reply, auto_ack=True)
            if method is not None:
                result: dict[str, Any] = json.loads(payload)
                if result.get("job_id") == job_id:
                    return result
            conn.sleep(0.5)
        raise PlatformError(f"no result for job {job_id} on queue {b['queue']} within {timeout:.0f}s")
    finally:
        with contextlib.suppress(Exception):
            conn.close()


# --------------------------------------------------------------------------------------------------- relay
@dataclass
class Relay:
    """127.0.0.1:<port> -> a Service's ClusterIP:port, as a detached socat process recorded in `state_dir`."""

    state_dir: Path
    name: str

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads((self.state_dir / RELAYS_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, data: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / RELAYS_FILE).write_text(json.dumps(data, indent=1))

    def start(self, port: int, target: str) -> str:
        """Forward 127.0.0.1:port to target (host:port); reuse a running relay with the same target."""
        relays = self._read()
        mine = relays.get(self.name)
        if mine and mine["target"] == target and mine["port"] == port and pid_alive(mine["pid"], "socat"):
            return f"http://127.0.0.1:{port}/"
        if mine:
            stop_pid(mine["pid"], "socat")
        log = (self.state_dir / f"relay-{self.name}.log").open("ab")
        proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"TCP:{target}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        time.sleep(0.5)
        if proc.poll() is not None:
            raise PlatformError(
                f"relay 127.0.0.1:{port} -> {target} could not start (port {port} in use? "
                f"set DEMO_PORT=<free port>): {(self.state_dir / f'relay-{self.name}.log').read_text()[-300:]}"
            )
        relays[self.name] = {"pid": proc.pid, "port": port, "target": target}
        self._write(relays)
        return f"http://127.0.0.1:{port}/"

    @classmethod
    def stop_all(cls, state_dir: Path) -> None:
        for entry in cls(state_dir, "")._read().values():
            stop_pid(entry["pid"], "socat")
        (state_dir / RELAYS_FILE).unlink(missing_ok=True)


def wait_healthy(url: str, timeout: float = 300) -> dict[str, Any]:
    """GET <url>/health_check until Langflow says its database and cache are ok."""
    import requests

    def check() -> dict[str, Any] | None:
        r = requests.get(url.rstrip("/") + "/health_check", timeout=5)
        body = r.json() if r.ok else {}
        return body if r.ok and body.get("status") == "ok" else None

    return wait_for(check, timeout, f"Langflow {url}/health_check", interval=2)


@contextlib.contextmanager
def api_session(url: str, user: str, password: str) -> Iterator[Any]:
    """A requests.Session logged in to Langflow (POST /api/v1/login) with its bearer token set."""
    import requests

    s = requests.Session()

    def attempt() -> tuple[Any] | None:
        # refused connections retried: after a rollout the Service may still route to the old pod for a moment
        try:
            return (
                s.post(url.rstrip("/") + "/api/v1/login", data={"username": user, "password": password}, timeout=30),
            )
        except requests.ConnectionError:
            return None

    (r,) = wait_for(attempt, 60, f"{url}/api/v1/login to accept connections", interval=2)
    if r.status_code != 200:
        raise PlatformError(f"login as {user} failed: HTTP {r.status_code} {r.text[:200]}")
    s.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    try:
        yield s
    finally:
        s.close()


def pods(
    cluster: Cluster, namespace: str, *, label_selector: str = "", field_selector: str = ""
) -> list[dict[str, Any]]:
    """The namespace's pods, optionally by label and field selector (e.g. spec.nodeName=<node>)."""
    args = ["get", "pods", "-n", namespace, "-o", "json"]
    if label_selector:
        args += ["-l", label_selector]
    if field_selector:
        args += ["--field-selector", field_selector]
    return list(json.loads(cluster.kubectl(*args).stdout)["items"])


def timestamp(rfc3339: str) -> float:
    """Seconds since the epoch of an API server timestamp (RFC 3339, "Z")."""
    return dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def ready_at(pod: dict[str, Any]) -> float:
    """When the pod's Ready condition last turned (epoch seconds)."""
    return timestamp(next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["lastTransitionTime"])


def ready_seconds(pod: dict[str, Any]) -> float:
    """Seconds from the pod's creation to Ready."""
    return ready_at(pod) - timestamp(pod["metadata"]["creationTimestamp"])


def start_phases(pod: dict[str, Any]) -> dict[str, float]:
    """Where a pod's start went, in seconds from its creation, read from the pod's own status: when it was
    scheduled, when each init container finished, when each container started, and when the pod was Ready."""
    t0 = timestamp(pod["metadata"]["creationTimestamp"])
    status = pod["status"]
    conds = {c["type"]: c["lastTransitionTime"] for c in status.get("conditions", [])}
    phases: dict[str, float] = {}
    if "PodScheduled" in conds:
        phases["scheduled"] = timestamp(conds["PodScheduled"]) - t0
    for c in status.get("initContainerStatuses", []):
        done = (c.get("state", {}).get("terminated") or {}).get("finishedAt")
        if done:
            phases[f"init {c['name']} done"] = timestamp(done) - t0
    for c in status.get("containerStatuses", []):
        started = (c.get("state", {}).get("running") or {}).get("startedAt")
        if started:
            phases[f"{c['name']} started"] = timestamp(started) - t0
    if "Ready" in conds:
        phases["ready"] = ready_seconds(pod)
    return {k: round(v, 1) for k, v in sorted(phases.items(), key=lambda kv: kv[1])}


def restart_deployment(
    cluster: Cluster, namespace: str, deployment: dict[str, Any], timeout: float = 300
) -> dict[str, Any]:
    """`kubectl rollout restart`, then wait until the new pod is Ready and the old ones are gone (their graceful
    stop would otherwise still use CPU and serve). Returns the new pod."""
    name = deployment["metadata"]["name"]
    sel = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
    before = {p["metadata"]["name"] for p in pods(cluster, namespace, label_selector=sel)}
    cluster.kubectl("rollout", "restart", "deployment", name, "-n", namespace)
    cluster.kubectl("rollout", "status", "deployment", name, "-n", namespace, f"--timeout={int(timeout)}s",
                    timeout=timeout + 20)  # fmt: skip
    wait_for(lambda: not {p["metadata"]["name"] for p in pods(cluster, namespace, label_selector=sel)} & before,
             180, f"the old pods {sorted(before)} of {name} to be gone", interval=2)  # fmt: skip
    (pod,) = pods(cluster, namespace, label_selector=sel)
    return pod


def pod_url(pod: dict[str, Any], port_name: str = "http") -> str:
    """The base URL of one pod (its IP and named container port), not of its Service."""
    ports = [p for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    port = next(p["containerPort"] for p in ports if p["name"] == port_name)
    return f"http://{pod['status']['podIP']}:{port}"


def first_and_warm_ms(
    url: str, user: str, password: str, path: str, warm: int, timeout: float = 120
) -> tuple[float, list[float]]:
    """Milliseconds of the first GET `path` a logged-in user sends to `url`, then of `warm` more."""
    with api_session(url, user, password) as session:

        def timed() -> float:
            started = time.monotonic()
            r = session.get(f"{url}{path}", timeout=timeout)
            if r.status_code != 200:
                raise PlatformError(f"GET {url}{path}: HTTP {r.status_code} {r.text[:200]}")
            return round((time.monotonic() - started) * 1000, 1)

        first = timed()
        return first, [timed() for _ in range(warm)]


def pods_on_node(cluster: Cluster, namespace: str, node: str) -> list[dict[str, Any]]:
    return pods(cluster, namespace, field_selector=f"spec.nodeName={node}")
