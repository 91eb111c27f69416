"""The data charts' exporter sidecars: rendered as the monitoring chart expects, and producing the alerts' data.

Render tests (marker render): the Redis broker's data pods carry a redis_exporter sidecar and the standalone
database a postgres_exporter sidecar, each with a container port named `metrics` (what the monitoring chart's
PodMonitors scrape, with selectors that match the pods), PSS-restricted securityContext and requests+limits;
`metrics.enabled=false` removes them.

Server tests (marker servers): the sidecar's environment and arguments, taken from the rendered container (its
secretKeyRefs resolved from the rendered Secret), run Debian's exporter binaries against real Redis/PostgreSQL
from tests/harness/servers.py. The scrape shows `redis_up 1` / `pg_up 1`, and after the server stops
`redis_up 0` / `pg_up 0`: the series the RedisDown / PostgreSQLDown alerts (alerts/data.rules.yaml) fire on.

Mapped for one machine (the rest is used as rendered):
- the image's binary -> Debian's /usr/bin/prometheus-redis-exporter (1.45) and /usr/bin/prometheus-postgres-exporter
  (0.11.1). Both read the same variables as the pinned upstream images (REDIS_ADDR, REDIS_PASSWORD,
  REDIS_EXPORTER_WEB_LISTEN_ADDRESS; DATA_SOURCE_URI, DATA_SOURCE_USER_FILE, DATA_SOURCE_PASS_FILE) and take the same
  --web.listen-address flag, so only addresses change;
- `localhost:6379` / `localhost:5432` (the pod's loopback) -> the test server's 127.0.0.1 port;
- the listen address `:9121` / `:9187` -> a free 127.0.0.1 port.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.harness import helm
from tests.harness.langflow import materialise_mounts, resolve_env
from tests.harness.servers import Process, free_port, postgres, redis, spawn, wait_for

RELEASE = "lf"
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"
POSTGRES_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
REDIS_WORKLOAD = f"{RELEASE}-broker-redis"
DATABASE_WORKLOAD = f"{RELEASE}-database"
RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
# (profile, workload, exporter port, PodMonitor of the monitoring chart that scrapes it)
CASES = {
    "redis": ("redis-queue", REDIS_WORKLOAD, 9121, f"{RELEASE}-monitoring-redis"),
    "postgres": ("dev", DATABASE_WORKLOAD, 9187, f"{RELEASE}-monitoring-database"),
}
DISABLE = {"redis": {"broker.redis.metrics.enabled": False}, "postgres": {"database.standalone.metrics.enabled": False}}


def _container(manifest: helm.Manifest, workload: str, name: str) -> dict[str, Any] | None:
    sts = manifest.get("StatefulSet", workload)
    return next((c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name), None)


# ------------------------------------------------------------------------------------------------ render
@pytest.mark.render
@pytest.mark.parametrize("case", sorted(CASES))
def test_exporter_sidecar_rendered_for_the_podmonitor(case: str) -> None:
    profile, workload, port, podmonitor = CASES[case]
    # integration mode with the Prometheus Operator's API: the monitoring chart renders its PodMonitors
    m = helm.render_profile(
        profile, set_values={"monitoring.mode": "integration"}, api_versions=["monitoring.coreos.com/v1"]
    )
    sts = m.get("StatefulSet", workload)
    c = _container(m, workload, "metrics")
    assert c is not None, f"{workload} has no exporter sidecar"
    assert {"name": "metrics", "containerPort": port} in c["ports"]
    sc = c["securityContext"]
    assert {k: sc.get(k) for k in RESTRICTED} == RESTRICTED
    assert sc.get("runAsUser", 0) > 0
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) >= {"cpu", "memory"}, f"{kind} of the sidecar"
    assert c["readinessProbe"]["httpGet"]["port"] == "metrics"
    assert c["livenessProbe"]["tcpSocket"]["port"] == "metrics"
    assert ":latest" not in c["image"] and re.search(r":v\d+\.\d+\.\d+$", c["image"]), c["image"]
    # the PodMonitor selects these pods and scrapes a port they name
    pm = m.get("PodMonitor", podmonitor)
    labels = sts["spec"]["template"]["metadata"]["labels"]
    selector = pm["spec"]["selector"]["matchLabels"]
    assert {k: labels.get(k) for k in selector} == selector, (selector, labels)
    names = {p["name"] for ctr in sts["spec"]["template"]["spec"]["containers"] for p in ctr.get("ports", [])}
    assert {e["port"] for e in pm["spec"]["podMetricsEndpoints"]} <= names


@pytest.mark.render
@pytest.mark.parametrize("case", sorted(CASES))
def test_exporter_sidecar_absent_when_disabled(case: str) -> None:
    profile, workload, _, _ = CASES[case]
    m = helm.render_profile(profile, set_values=DISABLE[case])
    assert _container(m, workload, "metrics") is None
    assert _container(m, workload, "redis" if case == "redis" else "postgresql") is not None


@pytest.mark.render
@pytest.mark.parametrize("case", sorted(CASES))
def test_networkpolicy_admits_prometheus_on_the_exporter_port(case: str) -> None:
    """The component's NetworkPolicy (default-deny) lets the monitoring chart's Prometheus reach `metrics`."""
    profile, workload, port, _ = CASES[case]
    m = helm.render_profile(profile)
    labels = m.get("StatefulSet", workload)["spec"]["template"]["metadata"]["labels"]
    prometheus = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/name": "monitoring"}
    policies = [
        np
        for np in m.of_kind("NetworkPolicy")
        if all(labels.get(k) == v for k, v in np["spec"]["podSelector"].get("matchLabels", {}).items())
        and "Ingress" in np["spec"].get("policyTypes", [])
    ]
    assert policies, f"no NetworkPolicy selects {workload}"
    admitted = [
        rule
        for np in policies
        for rule in np["spec"].get("ingress") or []
        if any(p.get("port") in (port, "metrics") for p in rule.get("ports") or [])
        and any(
            "namespaceSelector" not in peer
            and all(prometheus.get(k) == v for k, v in peer.get("podSelector", {}).get("matchLabels", {}).items())
            for peer in rule.get("from") or []
        )
    ]
    assert admitted, f"no ingress rule admits the bundled Prometheus to {workload}:{port}"


# ------------------------------------------------------------------------------------------------ servers
def _rendered_sidecar(case: str) -> tuple[dict[str, str], list[str], str]:
    """The exporter's environment (secretKeyRefs resolved from the rendered Secret), arguments, readiness path."""
    profile, workload, _, _ = CASES[case]
    m = helm.render_profile(profile)
    c = _container(m, workload, "metrics")
    assert c is not None
    return (
        resolve_env(m, m.get("StatefulSet", workload), c),
        list(c.get("args") or []),
        c["readinessProbe"]["httpGet"]["path"],
    )


def _mounted_files(case: str, root: Path) -> dict[str, Path]:
    """Each file the exporter's volume mounts hold, by its path inside the pod, written under `root`."""
    profile, workload, _, _ = CASES[case]
    m = helm.render_profile(profile)
    sts = m.get("StatefulSet", workload)
    c = _container(m, workload, "metrics")
    assert c is not None
    out: dict[str, Path] = {}
    for mount in materialise_mounts(m, sts, c, root, None):
        for f in mount.source.rglob("*"):
            if f.is_file():
                out[f"{mount.path.rstrip('/')}/{f.relative_to(mount.source)}"] = f
    return out


def _scrape(url: str) -> str:
    r = requests.get(url, timeout=5)
    r.raise_for_status()
    return r.text


def _gauge(text: str, name: str) -> float | None:
    m = re.search(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def _ready(base: str, path: str) -> None:
    """The rendered readiness probe's request succeeds (the kubelet counts 200-399 as ready)."""
    r = requests.get(base + path, timeout=5, allow_redirects=False)
    assert 200 <= r.status_code < 400, (path, r.status_code)


def _wait_gauge(url: str, name: str, value: float, timeout: float) -> float:
    start = time.monotonic()
    wait_for(lambda: _gauge(_scrape(url), name) == value, timeout, f"{name} {value:g} at {url}", interval=0.5)
    return time.monotonic() - start


@pytest.fixture
def exporters(tmp_path: Path) -> Iterator[list[Process]]:
    procs: list[Process] = []
    try:
        yield procs
    finally:
        for p in procs:
            p.stop(grace=5)


@pytest.mark.servers
@pytest.mark.timeout(60)
def test_redis_exporter_reports_redis_up_then_down(exporters: list[Process], tmp_path: Path) -> None:
    env, args, ready_path = _rendered_sidecar("redis")
    assert args == []
    assert env["REDIS_ADDR"] == "redis://localhost:6379"
    assert env["REDIS_EXPORTER_WEB_LISTEN_ADDRESS"] == ":9121"
    listen = free_port()
    with redis(password_=env["REDIS_PASSWORD"]) as srv:  # the password of the rendered credentials Secret
        run_env = {
            **env,
            "REDIS_ADDR": env["REDIS_ADDR"].replace("localhost:6379", f"127.0.0.1:{srv.port}"),
            "REDIS_EXPORTER_WEB_LISTEN_ADDRESS": f"127.0.0.1:{listen}",
            "PATH": "/usr/bin:/bin",
        }
        proc = spawn("redis-exporter", [REDIS_EXPORTER, *args], tmp_path / "redis-exporter.log", env=run_env)
        exporters.append(proc)
        base = f"http://127.0.0.1:{listen}"
        url = f"{base}/metrics"
        try:
            _wait_gauge(url, "redis_up", 1, 20)
            _ready(base, ready_path)
            srv.stop()
            _wait_gauge(url, "redis_up", 0, 20)
            _ready(base, ready_path)  # still ready: Prometheus keeps scraping redis_up 0 for the alert
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- exporter log ---\n{proc.tail()}") from exc


@pytest.mark.servers
@pytest.mark.timeout(90)
def test_postgres_exporter_reports_pg_up_then_down(exporters: list[Process], tmp_path: Path) -> None:
    env, args, ready_path = _rendered_sidecar("postgres")
    assert args == ["--web.listen-address=:9187"]
    uri = re.fullmatch(r"localhost:5432/([A-Za-z0-9_]+)\?sslmode=disable", env["DATA_SOURCE_URI"])
    assert uri, env["DATA_SOURCE_URI"]
    listen = free_port()
    # the application user and database of the rendered Secret and values, read from the files of the mounted
    # Secret (the *_FILE paths move to where the harness wrote the volume)
    files = _mounted_files(case="postgres", root=tmp_path)
    user, pw = (files[env[k]].read_text() for k in ("DATA_SOURCE_USER_FILE", "DATA_SOURCE_PASS_FILE"))
    with postgres(user=user, dbname=uri.group(1), password_=pw) as srv:
        run_env = {
            **env,
            "DATA_SOURCE_URI": env["DATA_SOURCE_URI"].replace("localhost:5432", f"127.0.0.1:{srv.port}"),
            "DATA_SOURCE_USER_FILE": str(files[env["DATA_SOURCE_USER_FILE"]]),
            "DATA_SOURCE_PASS_FILE": str(files[env["DATA_SOURCE_PASS_FILE"]]),
            "PATH": "/usr/bin:/bin",
        }
        run_args = [a.replace("=:9187", f"=127.0.0.1:{listen}") for a in args]
        proc = spawn("postgres-exporter", [POSTGRES_EXPORTER, *run_args], tmp_path / "pg-exporter.log", env=run_env)
        exporters.append(proc)
        base = f"http://127.0.0.1:{listen}"
        url = f"{base}/metrics"
        try:
            _wait_gauge(url, "pg_up", 1, 30)
            _ready(base, ready_path)
            srv.stop()
            _wait_gauge(url, "pg_up", 0, 30)
            _ready(base, ready_path)  # still ready: Prometheus keeps scraping pg_up 0 for the alert
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- exporter log ---\n{proc.tail()}") from exc
