"""A local installation to load: the platform as the chart renders it, plus Langflow's own defaults.

Ours: the umbrella chart rendered with a profile (dev by default); real PostgreSQL, RabbitMQ (and Redis when
the rendered env asks for one) started on loopback with the credentials from the rendered Secrets; the IDE
Deployment's and the runtime StatefulSet's Langflow containers and the runtime's worker container run as the
pods would (tests/harness/langflow.py: rendered env, resolved Secrets, bubblewrap with the pod's uid and
mounts). Baseline: a bare `langflow run` (SQLite, in-process cache) with the same flow files.
Everything listens on 127.0.0.1 and stops when the context exits.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tests.harness import helm, servers
from tests.harness.langflow import (
    LangflowError,
    LangflowProcess,
    baseline_process,
    find_container,
    find_workload,
    flow_files,
    langflow_process,
    resolve_env,
)


@dataclass
class Target:
    """One system under test: where its IDE API and runtime listen, and how to authenticate."""

    label: str
    ide: LangflowProcess
    runtime: LangflowProcess
    flows: list[str]
    amqp_url: str = ""
    queue: str = ""
    processes: list[LangflowProcess] = field(default_factory=list)
    endpoints: dict[str, Any] = field(default_factory=dict)

    def credentials(self) -> dict[str, Any]:
        user, pw = self.ide.superuser()
        return {"username": user, "password": pw, "auto_login": self.ide.auto_login, "api_key": self.runtime.api_key()}


@dataclass
class Installation:
    ours: Target | None
    baseline: Target | None
    manifest: helm.Manifest | None = None
    start_seconds: dict[str, float] = field(default_factory=dict)


def _url_parts(url: str) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(url)


def _container_env(manifest: helm.Manifest, workload: str, container: str | None = None) -> dict[str, str]:
    obj = find_workload(manifest, workload)
    return resolve_env(manifest, obj, find_container(obj, container))


def _has_container(manifest: helm.Manifest, workload: str, name: str) -> bool:
    obj = find_workload(manifest, workload)
    return any(c["name"] == name for c in obj["spec"]["template"]["spec"]["containers"])


def _parallel(jobs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Run the callables in threads; returns their results; raises the first error after all finished."""
    results: dict[str, float] = {}
    errors: list[BaseException] = []

    def wrap(name: str, fn: Callable[[], float]) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(n, f), daemon=True) for n, f in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def runnable_flows(lf: LangflowProcess, candidates: list[str], timeout: float = 30) -> list[str]:
    """The flows (endpoint names) that run on this Langflow without external services: one trial run each."""
    ok: list[str] = []
    for name in candidates:
        try:
            r = requests.post(
                f"{lf.base_url}/api/v1/run/{name}",
                headers={"x-api-key": lf.api_key()},
                json={"input_value": "warm-up", "input_type": "chat", "output_type": "chat"},
                timeout=timeout,
            )
        except requests.RequestException:
            continue
        if r.status_code == 200 and r.json().get("outputs"):
            ok.append(name)
    return ok


def _flow_names(files: dict[str, str]) -> list[str]:
    names = []
    for fname, text in sorted(files.items()):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue
        names.append(str(data.get("endpoint_name") or data.get("id") or Path(fname).stem))
    return names


@contextlib.contextmanager
def installation(
    *,
    profile: str = "dev",
    baseline: bool = True,
    ours: bool = True,
    logs: Path | None = None,
    startup_timeout: float = 300,
    set_values: dict[str, Any] | None = None,
    assigned_uid: int | None = None,
) -> Iterator[Installation]:
    """Start ours and/or the baseline concurrently; yields once every process is healthy. `set_values` go over the
    profile; `assigned_uid` runs every container of ours as that uid in group 0 (OpenShift's restricted-v2)."""
    manifest = helm.render_profile(profile, set_values=set_values)
    # flow_files runs the runtime's initContainers without a database: render it without wait-for-migrations
    no_wait = {**(set_values or {}), "runtime.waitForMigrations.enabled": False}
    files = flow_files(helm.render_profile(profile, set_values=no_wait), "runtime")
    flow_candidates = _flow_names(files)
    with contextlib.ExitStack() as stack:
        flows_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lfp-load-flows-")))
        for name, text in files.items():
            (flows_dir / name).write_text(text)
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        base_proc = None
        if baseline:
            base_proc = stack.enter_context(
                baseline_process(flows_dir=flows_dir, startup_timeout=startup_timeout, keep_logs=logs, wait=False)
            )
        target_ours = None
        waits: dict[str, Callable[[], float]] = {}
        if ours:
            ide_env = _container_env(manifest, "ide")
            rt_env = _container_env(manifest, "runtime")
            db = _url_parts(ide_env["LANGFLOW_DATABASE_URL"])
            pg = stack.enter_context(
                servers.postgres(
                    user=urllib.parse.unquote(db.username or "langflow"),
                    password_=ide_env["PGPASSWORD"],  # libpq's: the URL carries no password
                    dbname=db.path.lstrip("/") or "langflow",
                )
            )
            endpoints: dict[str, Any] = {db.hostname or "": {db.port or 5432: pg.port}}
            amqp_url = queue = ""
            worker_env = (
                _container_env(manifest, "runtime", "worker") if _has_container(manifest, "runtime", "worker") else {}
            )
            broker_url = worker_env.get("LF_BROKER_URL") or rt_env.get("LF_BROKER_URL", "")
            if broker_url.startswith("amqp"):
                b = _url_parts(broker_url)
                mq = stack.enter_context(
                    servers.rabbitmq(
                        user=urllib.parse.unquote(b.username or "langflow"),
                        password_=urllib.parse.unquote(b.password or ""),
                    )
                )
                endpoints[b.hostname or ""] = {b.port or 5672: mq.amqp_port, 15672: mq.management_port}
                amqp_url, queue = mq.url, worker_env.get("LF_BROKER_QUEUE", rt_env.get("LF_BROKER_QUEUE", ""))
            redis_url = ide_env.get("LANGFLOW_REDIS_URL") or rt_env.get("LANGFLOW_REDIS_URL", "")
            if redis_url:
                r = _url_parts(redis_url)
                rd = stack.enter_context(servers.redis(password_=urllib.parse.unquote(r.password or "") or None))
                endpoints[r.hostname or ""] = {r.port or 6379: rd.port}
            ide = stack.enter_context(
                langflow_process(
                    manifest,
                    "ide",
                    endpoints=endpoints,
                    health_path=None,
                    keep_logs=logs,
                    startup_timeout=startup_timeout,
                    assigned_uid=assigned_uid,
                )
            )
            target_ours = Target("ours", ide, ide, [], amqp_url, queue, [ide], endpoints)
            ours_target = target_ours

            def start_ours() -> float:
                # The runtime starts together with the IDE, as `helm install` starts them: the chart's
                # wait-for-migrations initContainer (run first by langflow_process) holds it back until the IDE
                # has migrated the fresh PostgreSQL (Langflow 1.13 processes migrating at once can hang on the
                # migration advisory lock).
                t = time.monotonic()
                runtime = stack.enter_context(
                    langflow_process(
                        manifest,
                        "runtime",
                        endpoints=endpoints,
                        health_path=None,
                        keep_logs=logs,
                        startup_timeout=startup_timeout,
                        assigned_uid=assigned_uid,
                    )
                )
                ours_target.runtime = runtime
                ours_target.processes.append(runtime)
                runtime.wait_healthy(startup_timeout)
                timings["runtime"] = round(time.monotonic() - t0, 1)
                return time.monotonic() - t

            def ide_healthy() -> float:
                seconds = ide.wait_healthy(startup_timeout)
                timings["ide"] = round(time.monotonic() - t0, 1)
                return seconds

            waits["ide"] = ide_healthy
            waits["ours"] = start_ours
        if base_proc is not None:
            waits["baseline"] = lambda: base_proc.wait_healthy(startup_timeout)
        for name, seconds in _parallel(waits).items():
            timings.setdefault(name, round(seconds, 1))
        timings["all"] = round(time.monotonic() - t0, 1)
        if target_ours is not None and _has_container(manifest, "runtime", "worker"):
            endpoints = dict(target_ours.endpoints)
            endpoints["localhost"] = {7860: target_ours.runtime.port}
            endpoints["127.0.0.1"] = {7860: target_ours.runtime.port}
            worker = stack.enter_context(
                langflow_process(
                    manifest,
                    "runtime",
                    container="worker",
                    endpoints=endpoints,
                    health_path=None,
                    keep_logs=logs,
                    overrides={"WORKER_METRICS_PORT": str(servers.free_port())},
                    assigned_uid=assigned_uid,
                )
            )
            target_ours.processes.append(worker)
        target_base = None
        if base_proc is not None:
            target_base = Target("baseline", base_proc, base_proc, [], processes=[base_proc])
        for t in (target_ours, target_base):
            if t is not None:
                t.flows = runnable_flows(t.runtime, flow_candidates)
                if not t.flows:
                    raise LangflowError(
                        f"{t.label}: none of the chart's flows {flow_candidates} runs without external services"
                    )
        yield Installation(target_ours, target_base, manifest, timings)
