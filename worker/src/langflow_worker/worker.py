"""The worker loop: receive up to `slots` jobs, run each in its own thread, settle results on the main thread."""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .brokers import Broker, Delivery
from .executors import ExecutionError, Executor
from .messages import Job, PoisonMessage, Result, dead_letter_body, parse_job
from .metrics import Metrics

log = logging.getLogger("langflow_worker")


@dataclass
class Outcome:
    delivery: Delivery
    job: Job | None
    status: str  # ok | failed | poison
    outputs: Any = None
    error: str | None = None
    retryable: bool = True
    duration_s: float = 0.0


class Worker:
    def __init__(
        self,
        broker: Broker,
        executor: Executor,
        *,
        slots: int = 1,
        max_retries: int = 3,
        worker_id: str = "worker",
        metrics: Metrics | None = None,
    ) -> None:
        self.broker = broker
        self.executor = executor
        self.slots = max(1, slots)
        self.max_retries = max(0, max_retries)
        self.worker_id = worker_id
        self.metrics = metrics or Metrics()
        self.metrics.slots.set(self.slots)
        self._done: queue.Queue[Outcome] = queue.Queue()
        self._in_flight: dict[int, Delivery] = {}

    # ------------------------------------------------------------------------------------------ threads
    def _execute(self, d: Delivery) -> None:
        start = time.monotonic()
        job: Job | None = None
        try:
            job = parse_job(d.body)
            outputs = self.executor.run(job)
            outcome = Outcome(d, job, "ok", outputs=outputs)
        except PoisonMessage as exc:
            outcome = Outcome(d, None, "poison", error=f"poison message: {exc}", retryable=False)
        except ExecutionError as exc:
            outcome = Outcome(d, job, "failed", error=str(exc), retryable=exc.retryable)
        except Exception as exc:  # an executor bug must not kill the slot; the job is retried
            outcome = Outcome(d, job, "failed", error=f"{type(exc).__name__}: {exc}")
        outcome.duration_s = time.monotonic() - start
        self._done.put(outcome)

    # ------------------------------------------------------------------------------------- main thread
    def _settle(self, block: float) -> None:
        try:
            first = self._done.get(timeout=block) if block > 0 else self._done.get_nowait()
        except queue.Empty:
            return
        outcomes = [first]
        while True:
            try:
                outcomes.append(self._done.get_nowait())
            except queue.Empty:
                break
        for o in outcomes:
            self._settle_one(o)

    def _result(self, o: Outcome, status: str) -> Result:
        assert o.job is not None
        return Result(o.job.job_id, status, o.outputs, o.error, o.duration_s * 1000, self.worker_id)

    def _reply(self, o: Outcome, result: Result) -> None:
        if o.job is not None and o.job.reply_to:
            self.broker.publish_result(o.job.reply_to, o.delivery.correlation_id or o.job.job_id, result.to_json())

    def _settle_one(self, o: Outcome) -> None:
        m = self.metrics
        d = o.delivery
        m.duration.labels("ok" if o.status == "ok" else "error").observe(o.duration_s)
        if o.status == "ok":
            self._reply(o, self._result(o, "ok"))
            self.broker.ack(d)
            m.processed.labels("ok").inc()
            log.info("job %s ok in %.0f ms", o.job.job_id if o.job else "?", o.duration_s * 1000)
        elif o.status == "poison":
            self.broker.dead_letter(d, dead_letter_body(d.body, o.error or "poison", 1))
            m.failures.labels("poison").inc()
            m.processed.labels("error").inc()
            log.error("dead-lettered a poison message: %s", o.error)
        else:
            assert o.job is not None
            if o.retryable and o.job.attempt <= self.max_retries:
                body = _json(o.job.with_attempt(o.job.attempt + 1))
                self.broker.retry(d, body)
                m.failures.labels("retried").inc()
                log.warning("job %s attempt %d failed, retrying: %s", o.job.job_id, o.job.attempt, o.error)
            else:
                self.broker.dead_letter(d, dead_letter_body(d.body, o.error or "failed", o.job.attempt))
                self._reply(o, self._result(o, "error"))
                m.failures.labels("dead_lettered").inc()
                m.processed.labels("error").inc()
                log.error("job %s dead-lettered after %d attempt(s): %s", o.job.job_id, o.job.attempt, o.error)
        self._in_flight.pop(id(d), None)
        m.in_flight.set(len(self._in_flight))

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then stop taking jobs, finish the ones in flight and return."""
        pool = ThreadPoolExecutor(self.slots, thread_name_prefix="job")
        consuming = True
        try:
            while True:
                self._settle(0)
                if stop.is_set():
                    if consuming:
                        consuming = False
                        self.metrics.draining.set(1)
                        for d in self.broker.stop_consuming():
                            self.broker.release(d)
                        log.info("draining: %d job(s) in flight", len(self._in_flight))
                    if not self._in_flight:
                        break
                    self._settle(0.1)
                    self.broker.pump(0, list(self._in_flight.values()))
                    continue
                free = self.slots - len(self._in_flight)
                if free <= 0:
                    self._settle(0.2)
                    self.broker.pump(0, list(self._in_flight.values()))
                    continue
                for d in self.broker.receive(free, 0.05 if self._in_flight else 1.0):
                    if stop.is_set():
                        self.broker.release(d)
                        continue
                    self._in_flight[id(d)] = d
                    self.metrics.in_flight.set(len(self._in_flight))
                    pool.submit(self._execute, d)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        self._settle(0)
        self.broker.close()


def _json(obj: dict[str, Any]) -> bytes:
    import json

    return json.dumps(obj).encode()
