"""Locust scenarios against a Langflow platform. Settings come from `loadtest.settings.Settings` (env).

- IdeUser: a person in the editor. Logs in (or auto-login), copies a flow into a flow of its own, then with
  think times lists flows, opens its flow, saves edits, lists projects and checks health. The component
  catalogue is listed once per session, when the editor opens (as the UI does). Request names start with
  "ide:". Its flow ("loadtest-...") is deleted after the run by `loadtest.run` (unmeasured cleanup).
- RuntimeUser: synchronous runs, POST /api/v1/run/{endpoint} with x-api-key, at a constant rate per user on
  flows that need no external service. Names start with "runtime:".
- QueueUser: publishes jobs in the worker's format to the broker and times them by their result messages
  (end to end). Names start with "queue:".
Every request is also written to `samples_path` (JSON lines) with the user count once a second, which the
report turns into exact percentiles and plots over time.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from typing import Any

import gevent
import requests
from locust import HttpUser, User, between, constant_throughput, events, task
from locust.env import Environment
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from loadtest import shapes
from loadtest.queue import QueueClient
from loadtest.settings import Settings

S = Settings.from_env()
_SAMPLES: list[dict[str, Any]] = []
_FLOW_CYCLE = itertools.cycle(S.flows or ["echo"])
_SESSIONS: list[str] = list(S.sessions)  # access tokens given, and of users who logged in (reused by the others)
_LOGINS: list[int] = []  # login attempts made


def _browser_like(session: requests.Session) -> None:
    """Retry an idempotent request once when a kept-alive connection was closed under it, as browsers do;
    POSTs (flow runs, logins, creates) are never retried, so their failures count."""
    retry = Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods={"GET", "HEAD", "PATCH", "DELETE"})
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float, exception: Any = None, **_kw: Any) -> None:
    _SAMPLES.append(
        {"t": time.time(), "name": name, "method": request_type, "ms": response_time, "ok": exception is None}
    )


@events.init.add_listener
def _sample_users(environment: Environment, **_kw: Any) -> None:
    def loop() -> None:
        while True:
            runner = environment.runner
            if runner is not None:
                _SAMPLES.append({"t": time.time(), "users": runner.user_count})
            gevent.sleep(1.0)

    gevent.spawn(loop)


@events.quitting.add_listener
def _write_samples(**_kw: Any) -> None:
    if S.samples_path:
        with open(S.samples_path, "w") as f:
            for s in _SAMPLES:
                f.write(json.dumps(s) + "\n")


class IdeUser(HttpUser):
    host = S.ide_host or None
    wait_time = between(S.think_min, S.think_max)

    def on_start(self) -> None:
        _browser_like(self.client)
        self.client.headers["Accept-Encoding"] = "gzip"
        # each simulated person has an address of their own; Langflow honours it only behind a trusted proxy
        # (LANGFLOW_RATE_LIMIT_TRUST_PROXY), which is how the login limiter sees users behind an ingress
        self.client.headers["X-Forwarded-For"] = (
            f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
        )
        self.flow_id: str | None = None
        self.flow_data: dict[str, Any] = {"nodes": [], "edges": []}
        self.edits = 0
        token = self._login()
        if not token:
            self.stop()
            return
        self.client.headers["Authorization"] = f"Bearer {token}"
        self.list_components()
        flows = self._list_flows()
        source = next((f for f in flows if not str(f.get("name", "")).startswith("loadtest-")), None)
        if source:
            with self.client.get(
                f"/api/v1/flows/{source['id']}", name="ide:open flow", timeout=S.request_timeout, catch_response=True
            ) as r:
                if r.status_code == 200:
                    self.flow_data = r.json().get("data") or self.flow_data
                else:
                    r.failure(f"{r.status_code}")
        body = {"name": f"loadtest-{uuid.uuid4().hex[:12]}", "description": "load test copy", "data": self.flow_data}
        with self.client.post(
            "/api/v1/flows/", json=body, name="ide:create flow", timeout=S.request_timeout, catch_response=True
        ) as r:
            if r.status_code in (200, 201):
                self.flow_id = r.json()["id"]
            else:
                r.failure(f"{r.status_code}: {r.text[:200]}")

    def _login(self) -> str | None:
        """Log in (or auto-login). Langflow limits logins to 5 a minute per client address, and every simulated
        person comes from this one address (the limiter trusts X-Forwarded-For only behind a trusted proxy), so
        the first `logins` users log in and the others continue with one of their sessions, like a person whose
        editor tab is already signed in. A login refused anyway (429) is recorded as "ide:login rate-limited"."""
        url = f"{self.host}/api/v1/{'auto_login' if S.auto_login else 'login'}"
        if len(_LOGINS) >= S.logins:
            deadline = time.monotonic() + S.request_timeout
            while not _SESSIONS and time.monotonic() < deadline:  # logins of other users still in flight
                gevent.sleep(0.2)
            if _SESSIONS:
                return random.choice(_SESSIONS)
        _LOGINS.append(1)
        t0 = time.perf_counter()
        exc: Exception | None = None
        name = "ide:login"
        token = None
        try:
            if S.auto_login:
                r = requests.get(url, headers=dict(self.client.headers), timeout=S.request_timeout)
            else:
                form = {"username": S.username, "password": S.password}
                r = requests.post(url, data=form, headers=dict(self.client.headers), timeout=S.request_timeout)
            if r.status_code == 200:
                token = str(r.json()["access_token"])
                _SESSIONS.append(token)
            elif r.status_code == 429 and _SESSIONS:
                name = "ide:login rate-limited"
                token = random.choice(_SESSIONS)
            else:
                exc = RuntimeError(f"login: {r.status_code} {r.text[:200]}")
        except requests.RequestException as e:
            exc = e
        self.environment.events.request.fire(
            request_type="POST",
            name=name,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=0,
            exception=exc,
        )
        return token

    def _list_flows(self) -> list[dict[str, Any]]:
        with self.client.get(
            "/api/v1/flows/",
            params={"header_flows": "true", "get_all": "true"},
            name="ide:list flows",
            timeout=S.request_timeout,
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}")
                return []
            data = r.json()
            return data if isinstance(data, list) else list(data.get("items", []))

    @task(4)
    def list_flows(self) -> None:
        self._list_flows()

    @task(3)
    def open_flow(self) -> None:
        if self.flow_id:
            self.client.get(f"/api/v1/flows/{self.flow_id}", name="ide:open flow", timeout=S.request_timeout)

    @task(2)
    def save_edit(self) -> None:
        if not self.flow_id:
            return
        self.edits += 1
        body = {"description": f"edit {self.edits} at {time.time():.0f}", "data": self.flow_data}
        self.client.patch(f"/api/v1/flows/{self.flow_id}", json=body, name="ide:save flow", timeout=S.request_timeout)

    def list_components(self) -> None:
        """The editor loads the component catalogue (GET /api/v1/all, ~3 MB) once when it opens."""
        self.client.get("/api/v1/all", name="ide:list components", timeout=S.request_timeout)

    @task(1)
    def list_projects(self) -> None:
        self.client.get("/api/v1/projects/", name="ide:list projects", timeout=S.request_timeout)

    @task(1)
    def health(self) -> None:
        self.client.get("/health_check", name="ide:health", timeout=S.request_timeout)


class RuntimeUser(HttpUser):
    host = S.runtime_host or None
    fixed_count = S.runtime_users
    wait_time = constant_throughput(S.runtime_rate_per_user)

    def on_start(self) -> None:
        self.client.headers["x-api-key"] = S.api_key

    @task
    def run_flow(self) -> None:
        flow = next(_FLOW_CYCLE)
        text = f"hello {random.randrange(1_000_000)}"
        body = {"input_value": text, "input_type": "chat", "output_type": "chat", "session_id": uuid.uuid4().hex}
        with self.client.post(
            f"/api/v1/run/{flow}", json=body, name=f"runtime:run {flow}", timeout=S.request_timeout, catch_response=True
        ) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text[:200]}")
            elif not (r.json().get("outputs") or []):
                r.failure("no outputs")


class QueueUser(User):
    fixed_count = S.queue_users
    wait_time = constant_throughput(S.runtime_rate_per_user)

    def on_start(self) -> None:
        self.qc: QueueClient | None = None
        try:
            self.qc = QueueClient(S.amqp_url, S.queue)
        except Exception as exc:  # any connection failure is a failed request
            self.environment.events.request.fire(
                request_type="AMQP", name="queue:connect", response_time=0, response_length=0, exception=exc
            )
            self.stop()

    def on_stop(self) -> None:
        if self.qc:
            self.qc.close()

    @task
    def run_queued(self) -> None:
        if not self.qc:
            return
        flow = next(_FLOW_CYCLE)
        try:
            ids = [self.qc.publish(flow, f"queued {random.randrange(1_000_000)}") for _ in range(S.queue_batch)]
        except Exception as exc:  # publishing failed: count it
            self.environment.events.request.fire(
                request_type="AMQP", name="queue:publish", response_time=0, response_length=0, exception=exc
            )
            return
        for res in self.qc.collect(ids, S.queue_result_timeout):
            failed = res.status != "ok"
            self.environment.events.request.fire(
                request_type="AMQP",
                name=f"queue:run {flow}",
                response_time=(res.latency_s if res.latency_s is not None else S.queue_result_timeout) * 1000.0,
                response_length=0,
                exception=RuntimeError(f"{res.status}: {res.error}") if failed else None,
            )


class Shape(shapes.SHAPES.get(S.shape, shapes.PlatformShape)):  # type: ignore[misc]
    """The shape chosen by Settings.shape (platform | step | steps | burst)."""
