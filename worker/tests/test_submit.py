"""worker: `python -m langflow_worker.submit` (the runtime chart's helm test client) — argument and env handling,
verdicts and exit codes with a fake broker, then for real against RabbitMQ and Redis on loopback with a real
worker process (sleep executor): the result comes back, names the worker, and a missing consumer is reported."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langflow_worker import submit

pytestmark = pytest.mark.worker

QUEUE = "langflow.flow-runs"
ENV = {"WORKER_BROKER": "redis", "WORKER_URL": "redis://:pw@h:6379/0", "WORKER_QUEUE": QUEUE}


# --- unit: arguments, verdicts, exit codes ----------------------------------------------------------------------


def test_parse_takes_the_workers_own_env() -> None:
    ns = submit.parse([], ENV)
    assert (ns.broker, ns.url, ns.queue, ns.flow, ns.timeout) == ("redis", ENV["WORKER_URL"], QUEUE, "echo", 120.0)
    ns = submit.parse(["--broker", "rabbitmq", "--queue", "q", "--timeout", "5"], ENV)
    assert (ns.broker, ns.queue, ns.timeout) == ("rabbitmq", "q", 5.0)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        ([], {}, "required: --broker, --url, --queue"),
        ([], {**ENV, "WORKER_BROKER": "sqs"}, "--broker must be one of"),
        (["--timeout", "0"], ENV, "--timeout must be positive"),
    ],
)
def test_parse_refuses_bad_usage(
    argv: list[str], env: dict[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        submit.parse(argv, env)
    assert exc.value.code == submit.USAGE
    assert message in capsys.readouterr().err


def test_new_job_is_a_valid_job_with_a_fresh_id() -> None:
    from langflow_worker.messages import parse_job

    a, b = submit.new_job("echo", "hi"), submit.new_job("echo", "hi")
    assert a["job_id"] != b["job_id"] and a["job_id"].startswith("submit-")
    job = parse_job(json.dumps({**a, "reply_to": "r"}))
    assert (job.flow, job.input_value, job.reply_to) == ("echo", "hi", "r")


@pytest.mark.parametrize(
    ("result", "expect", "code"),
    [
        ({"job_id": "j", "status": "ok", "outputs": [{"text": "hello"}]}, "", submit.OK),
        ({"job_id": "j", "status": "ok", "outputs": [{"text": "hello"}]}, "hello", submit.OK),
        ({"job_id": "j", "status": "ok", "outputs": [{"text": "bye"}]}, "hello", submit.FAILED),
        ({"job_id": "j", "status": "error", "outputs": None, "error": "HTTP 404"}, "", submit.FAILED),
    ],
)
def test_verdict(result: dict[str, Any], expect: str, code: int) -> None:
    assert submit.verdict(result, expect)[0] == code


def test_main_prints_the_result_and_the_worker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    def fake(url: str, queue: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        seen.update(url=url, queue=queue, job=job, timeout=timeout)
        return {"job_id": job["job_id"], "status": "ok", "outputs": [job["input_value"]], "worker": "lf-runtime-1"}

    monkeypatch.setitem(submit.SUBMITTERS, "redis", fake)
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    assert submit.main(["--input", "ping", "--expect", "ping", "--timeout", "7"]) == submit.OK
    out = capsys.readouterr().out
    assert "worker: lf-runtime-1" in out and '"status": "ok"' in out
    assert (seen["queue"], seen["job"]["flow"], seen["job"]["input_value"], seen["timeout"]) == (
        QUEUE,
        "echo",
        "ping",
        7,
    )
    assert ENV["WORKER_URL"] not in out, "the broker URL carries the password: never print it"


def test_main_reports_no_result(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def silent(url: str, queue: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise submit.SubmitError("no result within 1 s")

    def unreachable(url: str, queue: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
        raise ConnectionRefusedError("connection refused")

    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setitem(submit.SUBMITTERS, "redis", silent)
    assert submit.main([]) == submit.NO_RESULT
    monkeypatch.setitem(submit.SUBMITTERS, "redis", unreachable)
    assert submit.main([]) == submit.NO_RESULT
    err = capsys.readouterr().err
    assert "no result within 1 s" in err and "ConnectionRefusedError" in err and ENV["WORKER_URL"] not in err


# --- real brokers, a real worker ---------------------------------------------------------------------------------


def run_submit(broker: str, url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WORKER_BROKER": broker, "WORKER_URL": url, "WORKER_QUEUE": QUEUE}
    cmd = [sys.executable, "-m", "langflow_worker.submit", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


@contextlib.contextmanager
def worker(broker: str, url: str, tmp: Path, worker_id: str) -> Iterator[subprocess.Popen[bytes]]:
    """A sleep-executor worker (no Langflow) consuming QUEUE until the block ends."""
    args = ["--broker", broker, "--url", url, "--queue", QUEUE, "--executor", "sleep", "--sleep-seconds", "0"]
    args += ["--metrics-port", "0", "--worker-id", worker_id]
    with (tmp / f"{worker_id}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "langflow_worker", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_echoed(proc: subprocess.CompletedProcess[str], worker_id: str) -> None:
    assert proc.returncode == submit.OK, f"submit exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    assert f"worker: {worker_id}" in proc.stdout, proc.stdout
    assert '"status": "ok"' in proc.stdout and "ping-" in proc.stdout


@pytest.mark.timeout(240)
def test_submit_against_rabbitmq(tmp_path: Path) -> None:
    import pika

    from tests.harness import servers

    with servers.rabbitmq() as node:
        missing = run_submit("rabbitmq", node.url, "--timeout", "5")
        assert missing.returncode == submit.NO_RESULT and f"no queue '{QUEUE}'" in missing.stderr, missing.stderr

        def queue_exists() -> bool:
            conn = pika.BlockingConnection(pika.URLParameters(node.url))
            try:
                conn.channel().queue_declare(QUEUE, passive=True)
                return True
            finally:
                conn.close()

        with worker("rabbitmq", node.url, tmp_path, "rt-0"):
            wait_for(queue_exists, 30, f"the worker to declare {QUEUE}")
            for i in range(2):  # a second job: the first left no reply queue or stray result behind
                assert_echoed(run_submit("rabbitmq", node.url, "--input", f"ping-{i}", "--expect", f"ping-{i}"), "rt-0")


@pytest.mark.timeout(120)
def test_submit_against_redis(tmp_path: Path) -> None:
    from tests.harness import servers

    with servers.redis() as server:
        silent = run_submit("redis", server.url, "--timeout", "2")
        assert silent.returncode == submit.NO_RESULT and "no result" in silent.stderr, silent.stderr
        client = server.client()
        client.delete(QUEUE)  # the unanswered job of the timeout check
        with worker("redis", server.url, tmp_path, "rt-1"):
            assert_echoed(run_submit("redis", server.url, "--input", "ping-r", "--expect", "ping-r"), "rt-1")
        leftovers = [k for k in client.keys(f"{QUEUE}:results:*")]
        assert not leftovers, f"reply lists left behind: {leftovers}"
