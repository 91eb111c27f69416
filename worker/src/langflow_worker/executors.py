"""Executors run one job: `langflow` calls the pod's Langflow run API, `sleep` waits a fixed time (scaling tests)."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import requests

from .messages import Job


class ExecutionError(RuntimeError):
    """The job failed. `retryable` is False when running it again cannot help (e.g. 4xx: unknown flow)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Executor(Protocol):
    def run(self, job: Job) -> Any:
        """Run the job and return its outputs (JSON-serialisable); raise ExecutionError on failure."""
        ...


class SleepExecutor:
    """Sleeps `seconds` (interruptible only by process exit), then echoes the input. For scaling tests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, job: Job) -> Any:
        if job.tweaks.get("fail"):
            raise ExecutionError(f"job asked to fail: {job.tweaks['fail']}", retryable=True)
        threading.Event().wait(self.seconds)
        return [{"input_value": job.input_value, "slept_s": self.seconds}]


# HTTP statuses worth a retry: the server is busy, starting or broken right now.
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class LangflowExecutor:
    """POST {langflow_url}/api/v1/run/{flow} with x-api-key; returns Langflow's `outputs`."""

    def __init__(self, langflow_url: str, api_key: str, timeout: float = 300) -> None:
        self.base = langflow_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            if self.api_key:
                s.headers["x-api-key"] = self.api_key
            self._local.session = s
        return s

    def run(self, job: Job) -> Any:
        body: dict[str, Any] = {
            "input_value": job.input_value,
            "input_type": job.input_type,
            "output_type": job.output_type,
            "tweaks": job.tweaks,
        }
        # without a session id Langflow would put every run of a flow in one session (the flow id) and flows
        # with memory would see each other's messages: a job is its own session unless the client names one
        body["session_id"] = job.session_id or job.job_id
        url = f"{self.base}/api/v1/run/{job.flow}"
        try:
            r = self._session().post(url, params={"stream": "false"}, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ExecutionError(f"POST {url}: {exc}") from exc
        if r.status_code != 200:
            raise ExecutionError(
                f"POST {url}: HTTP {r.status_code}: {r.text[:500]}", retryable=r.status_code in RETRYABLE_STATUS
            )
        try:
            data = r.json()
        except ValueError as exc:
            raise ExecutionError(f"POST {url}: response is not JSON: {r.text[:200]}") from exc
        return data.get("outputs", data)

    def wait_ready(self, timeout: float, stop: threading.Event) -> None:
        """Block until Langflow's /health_check answers 200 (the pod's Langflow starts alongside the worker)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline and not stop.is_set():
            try:
                r = requests.get(f"{self.base}/health_check", timeout=5)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = str(exc)
            stop.wait(1.0)
        if not stop.is_set():
            raise TimeoutError(f"Langflow at {self.base} not healthy after {timeout:.0f}s ({last})")
