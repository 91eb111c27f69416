"""worker: the runtime's queue worker (`python -m langflow_worker`) as real processes against real RabbitMQ and
Redis servers on loopback: N jobs in → N correct results out, a worker killed mid-job → the job is redelivered and
completed exactly once, failures retried then dead-lettered, poison messages dead-lettered, SIGTERM drains."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
import yaml

from tests.harness import servers
from tests.harness.paths import ROOT

pytestmark = pytest.mark.worker

QUEUE = "langflow.flow-runs"
DLQ = "langflow.flow-runs.dlq"


class WorkerProc:
    """One `python -m langflow_worker` process with its log and metrics port."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path, metrics_port: int | None = None) -> None:
        self.metrics_port = metrics_port or servers.free_port()
        self.log = log
        full_env = {**os.environ, **env, "WORKER_METRICS_PORT": str(self.metrics_port), "PYTHONUNBUFFERED": "1"}
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "langflow_worker", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=ROOT,
                start_new_session=True,
            )

    def metric(self, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def wait_in_flight(self, n: int = 1, timeout: float = 30) -> None:
        servers.wait_for(lambda: self.metric("langflow_worker_jobs_in_flight") >= n, timeout, f"{n} job(s) in flight")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode


@pytest.fixture
def start_worker() -> Iterator[Callable[..., WorkerProc]]:
    procs: list[WorkerProc] = []
    with tempfile.TemporaryDirectory(prefix="lfp-worker-") as tmp:

        def start(
            broker: str, url: str, *extra: str, wait_metrics: bool = True, metrics_port: int | None = None, **env: str
        ) -> WorkerProc:
            args = ["--broker", broker, "--url", url, "--queue", QUEUE, "--dead-letter-queue", DLQ, *extra]
            p = WorkerProc(args, env, Path(tmp) / f"worker-{len(procs)}.log", metrics_port)
            procs.append(p)
            if wait_metrics:
                servers.wait_for(
                    lambda: p.popen.poll() is None and p.metric("langflow_worker_slots") >= 1,
                    30,
                    f"worker metrics\n{p.tail()}",
                )
            return p

        try:
            yield start
        finally:
            for p in procs:
                p.stop(signal.SIGKILL, 10)


def job(i: int | str, reply_to: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": f"job-{i}", "flow": "echo", "input_value": f"hello {i}", "reply_to": reply_to, **extra}


# --------------------------------------------------------------------------------------------- RabbitMQ
@pytest.fixture(scope="module")
def rabbit() -> Iterator[servers.RabbitMQ]:
    with servers.rabbitmq(plugins=("rabbitmq_management", "rabbitmq_prometheus")) as node:
        yield node


@pytest.fixture
def amqp(rabbit: servers.RabbitMQ) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    conn = pika.BlockingConnection(pika.URLParameters(rabbit.url))
    ch = conn.channel()
    for q in (QUEUE, DLQ):  # each test starts from empty queues the worker declares itself
        ch.queue_delete(q)
    try:
        yield ch
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def reply_queue(ch: Any) -> str:
    name = f"results-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(name, durable=True)
    return name


def publish(ch: Any, body: dict[str, Any] | bytes, correlation_id: str | None = None) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    props = pika.BasicProperties(delivery_mode=2, correlation_id=correlation_id, content_type="application/json")
    ch.basic_publish("", QUEUE, data, props)


def drain(ch: Any, queue: str, want: int, timeout: float) -> list[tuple[Any, dict[str, Any]]]:
    """Collect `want` messages from `queue` (bounded by `timeout`)."""
    got: list[tuple[Any, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((props, json.loads(body)))
    return got


def two_fast_workers(start_worker: Callable[..., WorkerProc], broker: str, url: str) -> list[WorkerProc]:
    """Two sleep-executor workers (50 ms a job, two in flight each) on the test queue of this broker."""
    fast = ("--executor", "sleep", "--sleep-seconds", "0.05", "--prefetch", "2")
    return [start_worker(broker, url, *fast, "--worker-id", f"w{i}") for i in range(2)]


@pytest.mark.timeout(180)
def test_rabbitmq_n_jobs_give_n_correct_results(amqp: Any, rabbit: servers.RabbitMQ, start_worker: Any) -> None:
    workers = two_fast_workers(start_worker, "rabbitmq", rabbit.url)
    replies = reply_queue(amqp)
    n = 40
    for i in range(n):
        publish(amqp, job(i, replies), correlation_id=f"corr-{i}")
    results = drain(amqp, replies, n, 60)
    assert len(results) == n, f"got {len(results)} of {n} results\n{workers[0].tail()}"
    by_id = {r["job_id"]: (props, r) for props, r in results}
    assert set(by_id) == {f"job-{i}" for i in range(n)}, "every job answered exactly once"
    for i in range(n):
        props, r = by_id[f"job-{i}"]
        assert props.correlation_id == f"corr-{i}", "the result carries the job's correlation id"
        assert r["status"] == "ok" and r["error"] is None
        assert r["outputs"][0]["input_value"] == f"hello {i}"
        assert r["duration_ms"] >= 50
    assert len({r["worker"] for _, r in results}) == 2, "both workers took jobs"
    assert sum(w.metric("langflow_worker_jobs_processed_total") for w in workers) == n
    queue = rabbit.api(f"queues/%2F/{QUEUE}")
    assert isinstance(queue, dict) and queue["arguments"]["x-queue-type"] == "quorum"
    assert queue["arguments"]["x-dead-letter-routing-key"] == DLQ


@pytest.mark.timeout(180)
def test_rabbitmq_worker_killed_mid_job_is_redelivered_and_completed_once(
    amqp: Any, rabbit: servers.RabbitMQ, start_worker: Any
) -> None:
    replies = reply_queue(amqp)
    first = start_worker("rabbitmq", rabbit.url, "--executor", "sleep", "--sleep-seconds", "3", "--worker-id", "a")
    publish(amqp, job("kill", replies))
    first.wait_in_flight(1)
    first.stop(signal.SIGKILL)
    second = start_worker("rabbitmq", rabbit.url, "--executor", "sleep", "--sleep-seconds", "0.5", "--worker-id", "b")
    results = drain(amqp, replies, 1, 60)
    assert len(results) == 1, f"the job was not completed after the kill\n{second.tail()}"
    assert results[0][1]["job_id"] == "job-kill" and results[0][1]["worker"] == "b"
    time.sleep(2)  # a duplicate would have arrived by now
    assert drain(amqp, replies, 1, 1) == [], "the job completed twice"
    assert second.metric("langflow_worker_jobs_processed_total") == 1


@pytest.mark.timeout(180)
def test_rabbitmq_failures_retry_then_dead_letter_and_poison(
    amqp: Any, rabbit: servers.RabbitMQ, start_worker: Any
) -> None:
    replies = reply_queue(amqp)
    w = start_worker("rabbitmq", rabbit.url, "--executor", "sleep", "--sleep-seconds", "0", "--max-retries", "2")
    publish(amqp, b"{not json")
    publish(amqp, job("bad", replies, tweaks={"fail": "always"}))
    publish(amqp, job("good", replies))
    dead = drain(amqp, DLQ, 2, 60)
    assert len(dead) == 2, w.tail()
    by_kind = {("raw" if "raw" in d else d["job_id"]): d for _, d in dead}
    assert by_kind["raw"]["raw"] == "{not json" and "poison" in by_kind["raw"]["error"]
    assert by_kind["job-bad"]["attempts"] == 3, "1 attempt + 2 retries before dead-lettering"
    assert "always" in by_kind["job-bad"]["error"]
    results = {r["job_id"]: r for _, r in drain(amqp, replies, 2, 30)}
    assert results["job-bad"]["status"] == "error" and "always" in results["job-bad"]["error"]
    assert results["job-good"]["status"] == "ok"
    assert w.metric('langflow_worker_job_failures_total{outcome="retried"}') == 2
    assert w.metric('langflow_worker_job_failures_total{outcome="dead_lettered"}') == 1
    assert w.metric('langflow_worker_job_failures_total{outcome="poison"}') == 1


@pytest.mark.timeout(120)
def test_rabbitmq_sigterm_drains_in_flight_job(amqp: Any, rabbit: servers.RabbitMQ, start_worker: Any) -> None:
    replies = reply_queue(amqp)
    w = start_worker("rabbitmq", rabbit.url, "--executor", "sleep", "--sleep-seconds", "2")
    publish(amqp, job("drain", replies))
    publish(amqp, job("later", replies))
    w.wait_in_flight(1)
    t0 = time.monotonic()
    assert w.stop(signal.SIGTERM, 30) == 0, w.tail()
    assert time.monotonic() - t0 < 10
    results = drain(amqp, replies, 1, 5)
    assert [r["job_id"] for _, r in results] == ["job-drain"], "the in-flight job finished before exit"
    method, _, body = amqp.basic_get(QUEUE, auto_ack=True)
    assert method is not None and json.loads(body)["job_id"] == "job-later", "the unstarted job stayed queued"


# ------------------------------------------------------------------------------------------------ Redis
@pytest.fixture(scope="module")
def redis_server() -> Iterator[servers.Redis]:
    with servers.redis() as server:
        yield server


@pytest.fixture
def rds(redis_server: servers.Redis) -> Any:
    client = redis_server.client()
    client.flushdb()
    return client


def redis_results(client: Any, key: str, want: int, timeout: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < deadline:
        item = client.brpop(key, timeout=1)
        if item:
            out.append(json.loads(item[1]))
    return out


@pytest.mark.timeout(180)
def test_redis_n_jobs_give_n_correct_results(rds: Any, redis_server: servers.Redis, start_worker: Any) -> None:
    workers = two_fast_workers(start_worker, "redis", redis_server.url)
    n = 40
    for i in range(n):
        rds.lpush(QUEUE, json.dumps(job(i, "results")))
    results = redis_results(rds, "results", n, 60)
    assert len(results) == n, workers[0].tail()
    assert sorted(r["job_id"] for r in results) == sorted(f"job-{i}" for i in range(n))
    assert all(r["status"] == "ok" and r["outputs"][0]["input_value"] == f"hello {r['job_id'][4:]}" for r in results)
    assert rds.llen(QUEUE) == 0
    # a worker acknowledges (LREM) right after it has published the result: give the last ack a moment
    servers.wait_for(lambda: all(rds.llen(k) == 0 for k in rds.keys(f"{QUEUE}:processing:*")), 10,
             "processing lists emptied (LREM)", interval=0.1)  # fmt: skip


@pytest.mark.timeout(180)
def test_redis_worker_killed_mid_job_is_reclaimed_and_completed_once(
    rds: Any, redis_server: servers.Redis, start_worker: Any
) -> None:
    first = start_worker(
        "redis",
        redis_server.url,
        "--executor",
        "sleep",
        "--sleep-seconds",
        "5",
        *("--worker-id", "a", "--heartbeat-ttl", "3"),
    )
    rds.lpush(QUEUE, json.dumps(job("kill", "results")))
    first.wait_in_flight(1)
    first.stop(signal.SIGKILL)
    assert rds.llen(f"{QUEUE}:processing:a") == 1, "the job sits in the dead worker's processing list"
    # another worker (not the same pod coming back) reclaims it once worker a's heartbeat expired
    second = start_worker(
        "redis",
        redis_server.url,
        "--executor",
        "sleep",
        "--sleep-seconds",
        "0.2",
        *("--worker-id", "b", "--heartbeat-ttl", "3"),
    )
    results = redis_results(rds, "results", 1, 30)
    assert [r["job_id"] for r in results] == ["job-kill"], second.tail()
    assert results[0]["worker"] == "b"
    time.sleep(2)
    assert rds.llen("results") == 0, "the job completed twice"
    assert rds.llen(f"{QUEUE}:processing:a") == 0


@pytest.mark.timeout(120)
def test_redis_failures_retry_then_dead_letter_and_poison(
    rds: Any, redis_server: servers.Redis, start_worker: Any
) -> None:
    w = start_worker("redis", redis_server.url, "--executor", "sleep", "--sleep-seconds", "0", "--max-retries", "1")
    rds.lpush(QUEUE, "[1, 2]")
    rds.lpush(QUEUE, json.dumps(job("bad", "results", tweaks={"fail": "boom"})))
    servers.wait_for(lambda: rds.llen(DLQ) == 2, 30, f"2 dead letters\n{w.tail()}")
    dead = [json.loads(x) for x in rds.lrange(DLQ, 0, -1)]
    bad = next(d for d in dead if d.get("job_id") == "job-bad")
    poison = next(d for d in dead if "raw" in d)
    assert bad["attempts"] == 2 and "boom" in bad["error"]
    assert poison["raw"] == "[1, 2]" and "poison" in poison["error"]
    results = redis_results(rds, "results", 1, 10)
    assert results and results[0]["status"] == "error"


# --------------------------------------------------------------- the runtime's flows get their code at start
FILL_SCRIPT = ROOT / "charts/langflow-runtime/files/fill_component_code.py"
CHART_FLOWS = ROOT / "charts/langflow-runtime/files/flows"


def run_fill(
    *dirs: Path, env_extra: dict[str, str] | None = None, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The initContainer's command (source folders, then the destination), with the Langflow venv's Python
    standing for the image's."""
    from tests.harness.langflow import LANGFLOW_VENV

    dest = dirs[-1]
    dest.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(dest.parent), "LANG": "C.UTF-8", **(env_extra or {})}
    return subprocess.run(
        [str(LANGFLOW_VENV / "bin" / "python"), str(FILL_SCRIPT), *options, *map(str, dirs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


def without_code(flow: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(flow))
    for n in out["data"]["nodes"]:
        n["data"]["node"]["template"]["code"]["value"] = ""
    return out


@pytest.mark.timeout(300)
def test_fill_component_code_fills_every_node_from_the_installed_langflow(tmp_path: Path) -> None:
    """Every code-less node of the chart's flows gets the source of its component class from the Langflow package
    (its built-in registry), and nothing else in the flow changes."""
    dest = tmp_path / "flows"
    dest.mkdir()
    r = run_fill(CHART_FLOWS, dest)
    assert r.returncode == 0, r.stderr[-3000:]
    sources = sorted(CHART_FLOWS.glob("*.json"))
    assert sources and sorted(p.name for p in dest.iterdir()) == [p.name for p in sources]
    for src in sources:
        committed, filled = json.loads(src.read_text()), json.loads((dest / src.name).read_text())
        assert without_code(filled) == committed, f"{src.name}: only the code fields change"
        for n in filled["data"]["nodes"]:
            node_type, code = n["data"]["type"], n["data"]["node"]["template"]["code"]["value"]
            assert code.strip(), f"{src.name}: {node_type} got no code"
            compile(code, f"{src.name}:{node_type}", "exec")  # valid Python
            assert f"class {node_type}" in code or f'name = "{node_type}"' in code, f"{node_type}'s own class"


@pytest.mark.timeout(600)
def test_fill_component_code_reuses_what_it_kept_on_the_cache_volume(tmp_path: Path) -> None:
    """With --cache (the pod's cache volume, as the chart passes it): the first start fills and keeps the files;
    a restart with the same flows copies them without building the registry; changed flows are filled again and
    the stale entry goes."""
    cache, src = tmp_path / "cache", tmp_path / "src"
    shutil.copytree(CHART_FLOWS, src)
    outs = [tmp_path / f"out{i}" for i in range(3)]
    for o in outs:
        o.mkdir()
    first = run_fill(src, outs[0], options=("--cache", str(cache)))
    assert first.returncode == 0 and "filled the code" in first.stdout, first.stderr[-3000:]
    (entry,) = list(cache.iterdir())
    again = run_fill(src, outs[1], options=("--cache", str(cache)))
    assert again.returncode == 0 and again.stdout.startswith("reused"), again.stdout + again.stderr[-2000:]
    assert "filled the code" not in again.stdout, "the restart built the registry again"
    for f in sorted(src.glob("*.json")):
        assert (outs[1] / f.name).read_bytes() == (outs[0] / f.name).read_bytes(), f.name
    changed = json.loads((src / "echo.json").read_text())
    changed["description"] = "changed between two starts"
    (src / "echo.json").write_text(json.dumps(changed))
    third = run_fill(src, outs[2], options=("--cache", str(cache)))
    assert third.returncode == 0 and "filled the code" in third.stdout, third.stdout + third.stderr[-2000:]
    assert json.loads((outs[2] / "echo.json").read_text())["description"] == "changed between two starts"
    assert [p.name for p in cache.iterdir()] != [entry.name] and len(list(cache.iterdir())) == 1


@pytest.mark.timeout(300)
def test_fill_component_code_fails_loudly_on_an_unknown_type(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    dest.mkdir()
    flow = json.loads((CHART_FLOWS / "echo.json").read_text())
    flow["data"]["nodes"][0]["data"]["type"] = "NoSuchComponent42"
    (src / "broken.json").write_text(json.dumps(flow))
    r = run_fill(src, dest)
    assert r.returncode == 1
    assert "broken.json" in r.stderr and "NoSuchComponent42" in r.stderr, r.stderr[-2000:]
    assert not (dest / "broken.json").exists(), "a flow with a code-less unknown node is not written"


@pytest.mark.timeout(600)
def test_fill_component_code_takes_custom_components_from_the_components_path(tmp_path: Path) -> None:
    """A flow that names a custom component by type only (tests/harness/values/flows/shout.json) gets that
    component's code from LANGFLOW_COMPONENTS_PATH (the chart's `components`, laid out as the pod mounts it: the
    category folder holding the modules of the harness values) and runs on Langflow's engine; without the path
    the fill fails naming the type; an edited component changes the kept entry's key (no stale reuse)."""
    from tests.harness.langflow import LANGFLOW_VENV

    given = yaml.safe_load((ROOT / "tests/harness/values/custom-components.yaml").read_text())["runtime"]["components"]
    root = tmp_path / "components"
    (root / given["category"]).mkdir(parents=True)
    for name, source in given["files"].items():
        (root / given["category"] / name).write_text(source)
    src, outs = tmp_path / "src", [tmp_path / f"out{i}" for i in range(4)]
    for d in (src, *outs):
        d.mkdir()
    shutil.copy(ROOT / "tests/harness/values/flows/shout.json", src)
    # the same flow as the IDE saves it: the node named by the palette's namespaced id of the component
    namespaced = f"ext:{given['category']}:ShoutComponent@extra"
    (src / "shout-ide.json").write_text(
        (src / "shout.json").read_text().replace('"type": "ShoutComponent"', f'"type": "{namespaced}"')
    )
    path_env = {"LANGFLOW_COMPONENTS_PATH": str(root)}
    bare = run_fill(src, outs[0])
    assert bare.returncode == 1 and "ShoutComponent" in bare.stderr, bare.stdout + bare.stderr[-2000:]
    cache = tmp_path / "cache"
    r = run_fill(src, outs[1], options=("--cache", str(cache)), env_extra=path_env)
    assert r.returncode == 0 and "filled the code of 3" in r.stdout, r.stdout + r.stderr[-3000:]
    filled = json.loads((outs[1] / "shout.json").read_text())
    node = next(n for n in filled["data"]["nodes"] if n["data"]["type"] == "ShoutComponent")
    assert node["data"]["node"]["template"]["code"]["value"] == given["files"]["shout.py"]
    ide_saved = json.loads((outs[1] / "shout-ide.json").read_text())
    node = next(n for n in ide_saved["data"]["nodes"] if n["data"]["type"] == namespaced)
    assert node["data"]["node"]["template"]["code"]["value"] == given["files"]["shout.py"]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "LANGFLOW_DO_NOT_TRACK": "true"}
    ran = subprocess.run([str(LANGFLOW_VENV / "bin" / "lfx"), "run", "-f", "text", str(outs[1] / "shout.json"),
                          "quiet words"], capture_output=True, text=True, env=env, timeout=240, check=False,
                         cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.strip().splitlines()[-1].startswith("QUIET WORDS"), ran.stdout[-2000:]
    (key,) = [p.name for p in cache.iterdir()]
    (root / given["category"] / "shout.py").write_text(given["files"]["shout.py"].replace("upper()", "lower()"))
    again = run_fill(src, outs[2], options=("--cache", str(cache)), env_extra=path_env)
    assert again.returncode == 0 and "filled the code" in again.stdout, again.stdout + again.stderr[-2000:]
    assert [p.name for p in cache.iterdir()] != [key], "an edited component must not reuse the old fill"


FETCH_SCRIPT = ROOT / "charts/langflow-runtime/files/fetch_flows.py"


@contextlib.contextmanager
def flow_server(files: dict[str, bytes], header: tuple[str, str]) -> Iterator[str]:
    """A loopback HTTP server that serves `files` only to requests carrying `header` (401 otherwise)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.headers.get(header[0]) != header[1]:
                self.send_response(401)
                self.end_headers()
                return
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_fetch(dest: Path, *args: str, headers: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The fetch-flows initContainer's command, with the Langflow venv's Python standing for the image's."""
    from tests.harness.langflow import LANGFLOW_VENV

    cmd = [str(LANGFLOW_VENV / "bin" / "python"), str(FETCH_SCRIPT)]
    cmd += ["--headers", str(headers)] if headers else []
    return subprocess.run([*cmd, "--timeout", "10", str(dest), *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], "HOME": str(dest.parent)}, check=False)  # fmt: skip


@pytest.mark.timeout(600)
def test_flows_from_a_configmap_and_a_url_with_secret_headers_load_and_run(tmp_path: Path) -> None:
    """flows.configMaps and flows.urls as the runtime's initContainers run them: fetch-flows downloads a flow with
    the headers of the mounted Secret (one file per header), the fill step takes the chart's flows, a ConfigMap's
    and the downloaded one, and the downloaded flow runs on Langflow's engine. A URL that answers 404, a body
    that is not a flow, a file that is not JSON and a name given twice each fail the start naming it; the header's
    value is never logged."""
    from tests.harness.langflow import LANGFLOW_VENV

    token = f"Bearer {uuid.uuid4().hex}"
    headers = tmp_path / "headers"
    headers.mkdir()
    (headers / "Authorization").write_text(token + "\n")
    work = (ROOT / "loadtest/flows/text-chain.json").read_bytes()
    fetched, user_cm, dest = tmp_path / "fetched", tmp_path / "team-flows", tmp_path / "flows"
    for d in (fetched, user_cm, dest):
        d.mkdir()
    shutil.copy(ROOT / "tests/harness/values/flows/shout.json", user_cm / "shout.json")
    files = {"flows/chain.json": work, "not-a-flow.json": b'{"name": "x"}'}
    with flow_server(files, ("Authorization", token)) as url:
        ok = run_fetch(fetched, f"remote-chain.json={url}/flows/chain.json", headers=headers)
        assert ok.returncode == 0 and (fetched / "remote-chain.json").read_bytes() == work, ok.stderr
        unauthorised = run_fetch(tmp_path, f"x.json={url}/flows/chain.json")
        missing = run_fetch(tmp_path, f"y.json={url}/flows/nope.json", headers=headers)
        not_flow = run_fetch(tmp_path, f"z.json={url}/not-a-flow.json", headers=headers)
    assert unauthorised.returncode == 1 and "HTTP 401" in unauthorised.stderr, unauthorised.stderr
    assert missing.returncode == 1 and f"{url}/flows/nope.json: HTTP 404" in missing.stderr, missing.stderr
    assert not_flow.returncode == 1 and "not a Langflow flow" in not_flow.stderr, not_flow.stderr
    for proc in (ok, unauthorised, missing, not_flow):
        assert token.split()[1] not in proc.stdout + proc.stderr, "a header value reached the log"
    components = yaml.safe_load((ROOT / "tests/harness/values/custom-components.yaml").read_text())["runtime"]
    comp_root = tmp_path / "components" / components["components"]["category"]
    comp_root.mkdir(parents=True)
    (comp_root / "shout.py").write_text(components["components"]["files"]["shout.py"])
    path_env = {"LANGFLOW_COMPONENTS_PATH": str(comp_root.parent)}
    r = run_fill(CHART_FLOWS, user_cm, fetched, dest, env_extra=path_env)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    expected = {p.name for p in CHART_FLOWS.glob("*.json")} | {"shout.json", "remote-chain.json"}
    assert {p.name for p in dest.iterdir()} == expected
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "LANGFLOW_DO_NOT_TRACK": "true"}
    ran = subprocess.run([str(LANGFLOW_VENV / "bin" / "lfx"), "run", "-f", "text", str(dest / "remote-chain.json"),
                          "fetched   flow ,  runs"], capture_output=True, text=True, env=env, timeout=240,
                         check=False, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0 and "FETCHED FLOW, RUNS" in ran.stdout, ran.stdout[-2000:] + ran.stderr[-2000:]
    (user_cm / "broken.json").write_text("{not json")
    broken = run_fill(CHART_FLOWS, user_cm, tmp_path / "out-broken", env_extra=path_env)
    assert broken.returncode == 1 and f"{user_cm / 'broken.json'}: not JSON" in broken.stderr, broken.stderr
    (user_cm / "broken.json").unlink()
    shutil.copy(fetched / "remote-chain.json", user_cm / "remote-chain.json")
    twice = run_fill(user_cm, fetched, tmp_path / "out-twice", env_extra=path_env)
    assert twice.returncode == 1 and "remote-chain.json" in twice.stderr and "twice" in twice.stderr, twice.stderr


@pytest.mark.timeout(300)
def test_a_code_less_flow_with_dynamic_outputs_runs_once_filled(tmp_path: Path) -> None:
    """loadtest/flows/text-chain.json (added through runtime.flows.extra by the throughput run; the outputs of its
    Text Operations nodes depend on the chosen operation) is filled by the initContainer's script and run by
    Langflow's own engine (`lfx run`): the input comes back inside the prompt, cleaned (no doubled spaces, no
    space before punctuation) and upper-cased."""
    from tests.harness.langflow import LANGFLOW_VENV

    src, dest = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    dest.mkdir()
    flow_file = ROOT / "loadtest/flows/text-chain.json"
    shutil.copy(flow_file, src)
    r = run_fill(src, dest)
    assert r.returncode == 0, r.stderr[-3000:]
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "LANGFLOW_DO_NOT_TRACK": "true"}
    ran = subprocess.run([str(LANGFLOW_VENV / "bin" / "lfx"), "run", "-f", "text", str(dest / flow_file.name),
                          "hello   world ,  how are   you ?"],
                         capture_output=True, text=True, env=env, timeout=240, check=False, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-3000:]
    out = ran.stdout.strip().splitlines()[-1]
    prompt = next(
        n for n in json.loads(flow_file.read_text())["data"]["nodes"] if n["data"]["type"] == "Prompt Template"
    )
    head = prompt["data"]["node"]["template"]["template"]["value"].split("{")[0].strip()
    assert out.startswith(head.upper()) and "HELLO WORLD, HOW ARE YOU?" in out, out
    assert out == out.upper() and "  " not in out and " ," not in out and " ?" not in out, out


# -------------------------------------------------------------------------------------------------- SQS
@pytest.fixture(scope="module")
def sqs_endpoint() -> Iterator[str]:
    """A local SQS (moto in server mode) on a free loopback port."""
    with servers.moto() as port:
        yield f"http://127.0.0.1:{port}"


AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}


@pytest.fixture
def sqs(sqs_endpoint: str) -> Iterator[tuple[Any, str, str]]:
    """(client, queue URL, DLQ URL): a job queue whose redrive policy moves a message to the DLQ after 5 receives."""
    import boto3

    client = boto3.client(
        "sqs",
        endpoint_url=sqs_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    suffix = uuid.uuid4().hex[:6]
    dlq = client.create_queue(QueueName=f"dlq-{suffix}")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})
    url = client.create_queue(QueueName=f"jobs-{suffix}", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    yield client, url, dlq


def sqs_drain(client: Any, url: str, want: int, timeout: float) -> list[tuple[str | None, dict[str, Any]]]:
    got: list[tuple[str | None, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        for msg in r.get("Messages", []):
            corr = (msg.get("MessageAttributes", {}).get("correlation_id") or {}).get("StringValue")
            got.append((corr, json.loads(msg["Body"])))
            client.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return got


def start_sqs_worker(start_worker: Any, endpoint: str, url: str, dlq: str, *extra: str) -> WorkerProc:
    return start_worker(
        "sqs", url, "--sqs-endpoint", endpoint, "--dead-letter-queue", dlq, "--executor", "sleep", *extra, **AWS_ENV
    )


@pytest.mark.timeout(180)
def test_sqs_jobs_results_poison_and_dead_letter(sqs: Any, sqs_endpoint: str, start_worker: Any) -> None:
    client, url, dlq = sqs
    results = client.create_queue(QueueName=f"results-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    w = start_sqs_worker(
        start_worker, sqs_endpoint, url, dlq, "--sleep-seconds", "0.05", "--prefetch", "4", "--max-retries", "1"
    )
    n = 20
    for i in range(n):
        attrs = {"correlation_id": {"DataType": "String", "StringValue": f"c{i}"}}
        client.send_message(QueueUrl=url, MessageBody=json.dumps(job(i, results)), MessageAttributes=attrs)
    client.send_message(QueueUrl=url, MessageBody="not json")
    client.send_message(QueueUrl=url, MessageBody=json.dumps(job("bad", results, tweaks={"fail": "sqs"})))
    got = sqs_drain(client, results, n + 1, 60)
    by_id = {r["job_id"]: (corr, r) for corr, r in got}
    assert len(by_id) == n + 1, w.tail()
    for i in range(n):
        corr, r = by_id[f"job-{i}"]
        assert corr == f"c{i}" and r["status"] == "ok" and r["outputs"][0]["input_value"] == f"hello {i}"
    assert by_id["job-bad"][0] == "job-bad", "without a correlation id the job id is used"
    assert by_id["job-bad"][1]["status"] == "error"
    dead = {("raw" if "raw" in d else d["job_id"]): d for _, d in sqs_drain(client, dlq, 2, 30)}
    assert dead["raw"]["raw"] == "not json" and dead["job-bad"]["attempts"] == 2


@pytest.mark.timeout(180)
def test_sqs_worker_killed_mid_job_is_redelivered_after_visibility_timeout(
    sqs: Any, sqs_endpoint: str, start_worker: Any
) -> None:
    client, url, dlq = sqs
    results = client.create_queue(QueueName=f"results-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    first = start_sqs_worker(
        start_worker, sqs_endpoint, url, dlq, "--sleep-seconds", "30", "--visibility-timeout", "4", "--worker-id", "a"
    )
    client.send_message(QueueUrl=url, MessageBody=json.dumps(job("kill", results)))
    first.wait_in_flight(1)
    first.stop(signal.SIGKILL)
    second = start_sqs_worker(start_worker, sqs_endpoint, url, dlq, "--sleep-seconds", "0.2", "--worker-id", "b")
    got = sqs_drain(client, results, 1, 60)
    assert [r["job_id"] for _, r in got] == ["job-kill"] and got[0][1]["worker"] == "b", second.tail()
    assert sqs_drain(client, results, 1, 3) == [], "the job completed twice"


@pytest.mark.timeout(600)
def test_rendered_ide_pod_with_redis_cache_and_job_queue_starts() -> None:
    """The redis-queue profile's IDE container (bwrap, the pod's uid/mounts, rendered env) on real PostgreSQL and
    Redis: Langflow 1.13 only starts when both the cache (LANGFLOW_REDIS_URL) and the job queue
    (LANGFLOW_REDIS_QUEUE_URL) reach Redis; health, superuser login and the metrics port answer, and Redis holds
    Langflow's keys."""
    import urllib.parse

    from tests.harness import helm
    from tests.harness.langflow import find_container, find_workload, langflow_process, resolve_env

    m = helm.render_profile("redis-queue")
    deployment = find_workload(m, "ide")
    env = resolve_env(m, deployment, find_container(deployment, "langflow"))
    assert (env["LANGFLOW_CACHE_TYPE"], env["LANGFLOW_JOB_QUEUE_TYPE"]) == ("redis", "redis")
    db = urllib.parse.urlsplit(env["LANGFLOW_DATABASE_URL"])
    rd = urllib.parse.urlsplit(env["LF_BROKER_URL"])
    with (
        servers.postgres(user=db.username or "", password_=env["PGPASSWORD"], dbname=db.path.lstrip("/")) as pg,
        servers.redis(password_=rd.password) as r,
    ):
        endpoints: dict[str, Any] = {"lf-database": {5432: pg.port}, "lf-broker": {6379: r.port}}
        with langflow_process(m, "ide", endpoints=endpoints, startup_timeout=300) as lf:
            health = requests.get(f"{lf.base_url}/health_check", timeout=10).json()
            assert health == {"status": "ok", "chat": "ok", "db": "ok"}
            assert lf.access_token(), "the superuser from the generated Secret logs in (auto-login is off)"
            assert lf.metrics_url and requests.get(lf.metrics_url, timeout=10).status_code == 200
            assert sum(r.client().info("keyspace").get(f"db{i}", {}).get("keys", 0) for i in (0, 1)) > 0


@pytest.mark.timeout(120)
def test_rendered_prestop_holds_langflow_until_the_worker_drained(
    amqp: Any, rabbit: servers.RabbitMQ, start_worker: Any
) -> None:
    """The runtime's shutdown contract: on SIGTERM the worker finishes its in-flight job and exits, and the Langflow
    container's preStop hook (the exact command the chart renders) returns only once the worker is gone — so the
    pod's Langflow keeps serving the job being drained — and well within terminationGracePeriodSeconds."""
    import threading

    from tests.harness import helm
    from tests.harness.langflow import find_container

    port = servers.free_port()
    m = helm.render_profile("prod", set_values={"runtime.worker.metricsPort": port})
    sts = m.get("StatefulSet", "lf-runtime")
    grace = sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    pre_stop = find_container(sts, "langflow")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "python" and f"127.0.0.1:{port}/metrics" in pre_stop[-1]
    replies = reply_queue(amqp)
    w = start_worker("rabbitmq", rabbit.url, "--executor", "sleep", "--sleep-seconds", "4", metrics_port=port)
    publish(amqp, job("drain", replies))
    w.wait_in_flight(1)
    hook_done: list[float] = []
    t0 = time.monotonic()

    def run_hook() -> None:
        subprocess.run([sys.executable, *pre_stop[1:]], timeout=grace, check=True)
        hook_done.append(time.monotonic() - t0)

    hook = threading.Thread(target=run_hook)
    hook.start()  # the kubelet runs the preStop hook and signals the worker container at the same time
    os.killpg(w.popen.pid, signal.SIGTERM)
    assert w.popen.wait(30) == 0, w.tail()
    worker_exit = time.monotonic() - t0
    hook.join(30)
    assert hook_done, "the preStop hook did not return"
    assert worker_exit > 1, "the worker waited for its in-flight job"
    assert hook_done[0] >= worker_exit - 0.1, "Langflow's preStop returned while the worker was still draining"
    assert hook_done[0] < worker_exit + 5 and hook_done[0] < grace
    results = drain(amqp, replies, 1, 5)
    assert [r["job_id"] for _, r in results] == ["job-drain"]


@pytest.mark.timeout(120)
def test_worker_exits_promptly_when_the_broker_goes_away(start_worker: Any) -> None:
    """A lost broker connection ends the worker with a non-zero code at once (even with a long job in flight),
    so Kubernetes restarts the container; the job stays in Redis (the processing list) for redelivery."""
    with servers.redis() as server:
        client = server.client()
        w = start_worker("redis", server.url, "--executor", "sleep", "--sleep-seconds", "60", "--worker-id", "gone")
        client.lpush(QUEUE, json.dumps(job("long", "results")))
        w.wait_in_flight(1)
        assert client.llen(f"{QUEUE}:processing:gone") == 1
        server.stop()
        t0 = time.monotonic()
        code = w.popen.wait(30)
        assert code == 3, w.tail()
        assert time.monotonic() - t0 < 15, "the worker did not wait for its 60 s job"
        assert "broker connection lost" in w.log.read_text()


# ------------------------------------------------------- the runtime waits for the IDE to migrate a fresh database
@pytest.mark.timeout(420)
def test_runtime_waits_for_the_ide_to_migrate_a_fresh_database(tmp_path: Path) -> None:
    """The rendered wait-for-migrations initContainer on a fresh PostgreSQL: with no IDE it keeps waiting and fails
    with a clear message after its (overridden, short) timeout, before fill-component-code runs. (The IDE and the
    runtime starting together, the runtime held back until the IDE migrated, run for real in the e2e layer:
    tests/test_e2e.py::test_runtime_waited_for_the_ides_migrations_and_logs_are_json.)"""
    import copy
    import urllib.parse

    from tests.harness import helm
    from tests.harness.langflow import (
        LangflowError,
        find_container,
        find_workload,
        resolve_env,
        run_init_containers,
    )

    m = helm.render_profile("dev")
    sts = find_workload(m, "runtime")
    # the same release with waitForMigrations.timeoutSeconds=12 (a second render would generate other passwords;
    # the value -> env wiring is covered by test_render_app)
    short = helm.Manifest(copy.deepcopy(m.objects), "dev, timeoutSeconds 12")
    (wait,) = [
        c
        for c in find_workload(short, "runtime")["spec"]["template"]["spec"]["initContainers"]
        if c["name"] == "wait-for-migrations"
    ]
    (timeout_env,) = [e for e in wait["env"] if e["name"] == "WAIT_TIMEOUT_SECONDS"]
    timeout_env["value"] = "12"
    lf_env = resolve_env(m, sts, find_container(sts, "langflow"))
    db = urllib.parse.urlsplit(lf_env["LANGFLOW_DATABASE_URL"])
    with servers.postgres(user=db.username or "", password_=lf_env["PGPASSWORD"], dbname=db.path.lstrip("/")) as pg:
        endpoints: dict[str, Any] = {"lf-database": {5432: pg.port}}
        early = tmp_path / "early"
        t0 = time.monotonic()
        with pytest.raises(LangflowError, match="not at Langflow's head revision") as failed:
            run_init_containers(short, "runtime", root=early, endpoints=endpoints, timeout=90)
        waited = time.monotonic() - t0
        assert "initContainer lf-runtime/wait-for-migrations exited with 1" in str(failed.value)
        assert "none (not migrated yet)" in str(failed.value), "it reached the database and found no schema"
        assert 12 <= waited < 60, f"bounded by timeoutSeconds=12: {waited:.1f}s"
        assert not list((early / "volumes").glob("*/*.json")), "fill-component-code must not run before"
        print(f"\nwait-for-migrations without an IDE failed after {waited:.1f}s (timeout 12 s)")


@pytest.mark.timeout(300)
def test_pod_without_writable_tmp_fails_to_start() -> None:
    """The harness runs Langflow on a read-only root: the IDE pod without its /tmp emptyDir must not start.
    The database is pointed at SQLite in the pod's writable /app/data so that /tmp is the only thing missing."""
    import copy

    from tests.harness import helm
    from tests.harness.langflow import LangflowError, find_container, find_workload, langflow_process

    manifest = helm.render_profile("dev")
    broken = copy.deepcopy(manifest.objects)
    container = find_container(find_workload(helm.Manifest(broken), "ide"))
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    assert any(m["mountPath"] == "/app/data" for m in container["volumeMounts"]), "the IDE lost its data mount"
    sqlite = {"LANGFLOW_DATABASE_URL": "sqlite:////app/data/harness.db"}
    with pytest.raises(LangflowError) as err:  # noqa: SIM117
        with langflow_process(helm.Manifest(broken, "dev without /tmp"), "ide", overrides=sqlite, startup_timeout=240):
            pass
    message = str(err.value)
    assert "exited" in message, message[-3000:]
    assert "Read-only file system" in message or "No usable temporary directory" in message, message[-3000:]
