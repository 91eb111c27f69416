"""worker unit: the langflow executor against a real HTTP server speaking Langflow's run API shape, and the
metrics endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from langflow_worker.executors import ExecutionError, LangflowExecutor, SleepExecutor
from langflow_worker.messages import parse_job
from langflow_worker.metrics import Metrics

pytestmark = pytest.mark.worker


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:  # /health_check
            self.send_response(200 if self.path == "/health_check" else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            rec.requests.append({"path": self.path, "key": self.headers.get("x-api-key"), "body": body})
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            out = {"outputs": [{"echo": body["input_value"]}]} if rec.status == 200 else {"detail": "nope"}
            self.wfile.write(json.dumps(out).encode())

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", rec
    finally:
        httpd.shutdown()
        httpd.server_close()


JOB = parse_job(
    json.dumps({"job_id": "j", "flow": "echo", "input_value": "hi", "tweaks": {"C": {"v": 1}}, "session_id": "s"})
)


@pytest.mark.timeout(30)
def test_langflow_executor_calls_the_run_api(server: tuple[str, Recorder]) -> None:
    url, rec = server
    ex = LangflowExecutor(url + "/", "secret", timeout=5)
    ex.wait_ready(5, threading.Event())
    assert ex.run(JOB) == [{"echo": "hi"}]
    req = rec.requests[0]
    assert req["path"] == "/api/v1/run/echo?stream=false" and req["key"] == "secret"
    assert req["body"] == {
        "input_value": "hi",
        "input_type": "chat",
        "output_type": "chat",
        "tweaks": {"C": {"v": 1}},
        "session_id": "s",
    }


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("status", "retryable"), [(503, True), (429, True), (500, True), (404, False), (403, False)])
def test_langflow_errors_are_classified(server: tuple[str, Recorder], status: int, retryable: bool) -> None:
    url, rec = server
    rec.status = status
    with pytest.raises(ExecutionError, match=f"HTTP {status}") as exc:
        LangflowExecutor(url, "k", timeout=5).run(JOB)
    assert exc.value.retryable is retryable


@pytest.mark.timeout(30)
def test_a_job_without_session_is_its_own_session(server: tuple[str, Recorder]) -> None:
    url, rec = server
    LangflowExecutor(url, "k", timeout=5).run(parse_job(b'{"job_id": "job-7", "flow": "f"}'))
    assert rec.requests[0]["body"]["session_id"] == "job-7"


@pytest.mark.timeout(30)
def test_unreachable_langflow_is_retryable_and_wait_ready_times_out() -> None:
    from tests.harness.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ExecutionError) as exc:
        LangflowExecutor(url, "k", timeout=2).run(JOB)
    assert exc.value.retryable
    with pytest.raises(TimeoutError, match="not healthy"):
        LangflowExecutor(url, "k").wait_ready(1.5, threading.Event())


def test_sleep_executor_echoes_and_fails_on_request() -> None:
    assert SleepExecutor(0).run(JOB) == [{"input_value": "hi", "slept_s": 0}]
    failing = parse_job(b'{"job_id": "j", "flow": "f", "tweaks": {"fail": "x"}}')
    with pytest.raises(ExecutionError, match="x"):
        SleepExecutor(0).run(failing)


@pytest.mark.timeout(30)
def test_metrics_are_served() -> None:
    from tests.harness.servers import free_port

    m = Metrics()
    m.slots.set(3)
    m.duration.labels("ok").observe(0.2)
    m.failures.labels("retried").inc()
    port = free_port()
    m.serve(port, addr="127.0.0.1")
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert "langflow_worker_slots 3.0" in text
    assert 'langflow_worker_job_duration_seconds_count{status="ok"} 1.0' in text
    assert 'langflow_worker_job_failures_total{outcome="retried"} 1.0' in text
    assert "langflow_worker_jobs_in_flight 0.0" in text
