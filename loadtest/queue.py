"""Queued flow runs: publish jobs in the runtime worker's format and time them by their result messages.

Job (worker/README.md): {"job_id", "flow", "input_value", "input_type", "output_type", "tweaks", "session_id",
"reply_to"}; result: {"job_id", "status", "outputs", "error", "duration_ms", "worker"}, published by the worker
to `reply_to` (default exchange) with correlation_id = job_id. Latency here is end to end: publish -> result
received, which includes the time a job waits in the queue (what KEDA scales on).

Usable without Locust, e.g. by the scaling tests: `burst(url, queue, "echo", 200)`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions


class QueueError(RuntimeError):
    """The job queue is missing, a job could not be published, or results did not arrive in time."""


@dataclass
class JobResult:
    job_id: str
    flow: str
    sent: float  # time.time() at publish
    latency_s: float | None  # None: no result before the deadline
    status: str  # ok | error | timeout
    error: str | None
    worker: str | None
    duration_ms: float | None


class QueueClient:
    """One connection, one exclusive reply queue. Not thread-safe (one per user/greenlet)."""

    def __init__(self, amqp_url: str, queue: str) -> None:
        self.queue = queue
        self._conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self._ch = self._conn.channel()
        try:
            self._ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            self._conn.close()
            raise QueueError(f"job queue {queue!r} does not exist (is a worker running?): {exc}") from exc
        self._ch.confirm_delivery()
        self.reply_to = self._ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        self._pending: dict[str, tuple[str, float]] = {}
        self._done: dict[str, JobResult] = {}
        self._ch.basic_consume(self.reply_to, self._on_result, auto_ack=True)

    def _on_result(self, _ch: Any, _method: Any, props: Any, body: bytes) -> None:
        now = time.time()
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return
        job_id = str(data.get("job_id") or props.correlation_id or "")
        if job_id not in self._pending:
            return
        flow, sent = self._pending.pop(job_id)
        self._done[job_id] = JobResult(
            job_id,
            flow,
            sent,
            now - sent,
            str(data.get("status", "error")),
            data.get("error"),
            data.get("worker"),
            data.get("duration_ms"),
        )

    def publish(self, flow: str, input_value: str = "", tweaks: dict[str, Any] | None = None) -> str:
        job_id = str(uuid.uuid4())
        job = {
            "job_id": job_id,
            "flow": flow,
            "input_value": input_value,
            "input_type": "chat",
            "output_type": "chat",
            "tweaks": tweaks or {},
            "session_id": job_id,
            "reply_to": self.reply_to,
        }
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, correlation_id=job_id, reply_to=self.reply_to
        )
        sent = time.time()
        try:
            self._ch.basic_publish("", self.queue, json.dumps(job).encode(), props, mandatory=True)
        except pika.exceptions.UnroutableError as exc:
            raise QueueError(f"job {job_id} unroutable to queue {self.queue!r}") from exc
        self._pending[job_id] = (flow, sent)
        return job_id

    def collect(self, job_ids: Iterable[str], timeout: float) -> list[JobResult]:
        """Wait (bounded) for the results of `job_ids`; jobs without a result come back with status timeout."""
        wanted = list(job_ids)
        deadline = time.monotonic() + timeout
        while any(j not in self._done for j in wanted) and time.monotonic() < deadline:
            self._conn.process_data_events(time_limit=min(0.2, max(0.0, deadline - time.monotonic())))
        out: list[JobResult] = []
        for j in wanted:
            if j in self._done:
                out.append(self._done.pop(j))
            else:
                flow, sent = self._pending.pop(j, ("?", 0.0))
                out.append(JobResult(j, flow, sent, None, "timeout", f"no result within {timeout:.0f}s", None, None))
        return out

    def depth(self) -> int:
        """Messages ready in the job queue now."""
        return int(self._ch.queue_declare(self.queue, passive=True).method.message_count)

    def close(self) -> None:
        try:
            if self._conn.is_open:
                self._conn.close()
        except pika.exceptions.AMQPError:
            pass


def burst(amqp_url: str, queue: str, flow: str, n: int, timeout: float = 300.0) -> list[JobResult]:
    """Publish `n` jobs at once, then collect every result (bounded by `timeout`)."""
    client = QueueClient(amqp_url, queue)
    try:
        ids = [client.publish(flow, f"burst {i}") for i in range(n)]
        return client.collect(ids, timeout)
    finally:
        client.close()
