"""python -m langflow_worker.submit: publish one job to the runtime's queue and wait for its result.

The client side of the job format (worker/README.md), as the runtime chart's `helm test` hook uses it: the job
gets a reply destination of its own (RabbitMQ: an exclusive, server-named queue; Redis: the list
`<queue>:results:<job_id>`), the result is printed as JSON, followed by `worker: <pod name>`.

Exit codes: 0 the result is `ok` (and contains --expect, when given); 1 an `error` result or --expect missing;
2 bad usage; 3 no result within --timeout, the broker unreachable, or the job refused (no such queue).
--broker, --url and --queue default to WORKER_BROKER, WORKER_URL and WORKER_QUEUE, the worker's own variables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

OK, FAILED, USAGE, NO_RESULT = 0, 1, 2, 3


class SubmitError(RuntimeError):
    """No result: the broker refused the job, or none came back in time."""


def new_job(flow: str, input_value: str, job_id: str | None = None) -> dict[str, Any]:
    return {"job_id": job_id or f"submit-{uuid.uuid4()}", "flow": flow, "input_value": input_value}


def submit_rabbitmq(url: str, queue: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Publish `job` (confirmed, mandatory: a missing queue is an error) with an exclusive reply queue; return the
    result whose job_id matches."""
    import pika
    import pika.exceptions

    params = pika.URLParameters(url)
    params.socket_timeout = 10
    params.blocked_connection_timeout = 30
    conn = pika.BlockingConnection(params)
    try:
        ch = conn.channel()
        reply = ch.queue_declare("", exclusive=True, auto_delete=True).method.queue
        job = {**job, "reply_to": reply}
        ch.confirm_delivery()
        props = pika.BasicProperties(
            content_type="application/json", delivery_mode=2, correlation_id=job["job_id"], reply_to=reply
        )
        try:
            ch.basic_publish("", queue, json.dumps(job).encode(), props, mandatory=True)
        except pika.exceptions.UnroutableError as exc:
            raise SubmitError(f"RabbitMQ has no queue {queue!r} to take the job") from exc
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            method, _props, body = ch.basic_get(reply, auto_ack=True)
            if method is None:
                conn.sleep(min(0.5, left))
                continue
            result = _result(body)
            if result.get("job_id") == job["job_id"]:
                return result
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    raise SubmitError(f"no result for job {job['job_id']} from queue {queue!r} within {timeout:.0f} s")


def enqueue_redis(client: Any, queue: str, job: Mapping[str, Any]) -> None:
    """LPUSH one job; it counts as enqueued once a replica holds it (brokers.replicated: WAIT 1 when the primary
    has replicas), so a Sentinel failover right after cannot lose it. Raises NotReplicated otherwise."""
    from .brokers import replicated

    client.lpush(queue, json.dumps(dict(job)))
    replicated(client, f"job {job.get('job_id')} on {queue}")


def submit_redis(url: str, queue: str, job: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Enqueue `job` (enqueue_redis) with reply list `<queue>:results:<job_id>`; BRPOP it until the result comes
    (the list is deleted afterwards, also on timeout)."""
    import redis

    from .brokers import NotReplicated

    client = redis.Redis.from_url(url, socket_timeout=10)
    reply = f"{queue}:results:{job['job_id']}"
    job = {**job, "reply_to": reply}
    try:
        try:
            enqueue_redis(client, queue, job)
        except NotReplicated as exc:
            raise SubmitError(f"job not acknowledged: {exc}") from exc
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            got = client.brpop([reply], timeout=max(1, min(5, int(left))))
            if got is None:
                continue
            result = _result(got[1])
            if result.get("job_id") == job["job_id"]:
                return result
    finally:
        with contextlib.suppress(Exception):
            client.delete(reply)
            client.close()
    raise SubmitError(f"no result for job {job['job_id']} from list {queue!r} within {timeout:.0f} s")


SUBMITTERS = {"rabbitmq": submit_rabbitmq, "redis": submit_redis}


def _result(body: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def verdict(result: Mapping[str, Any], expect: str = "") -> tuple[int, str]:
    """(exit code, reason) for a result: ok, an error result, or an ok result without the expected text."""
    if result.get("status") != "ok":
        return FAILED, f"job {result.get('job_id')} failed: {result.get('error')}"
    if expect and expect not in json.dumps(result.get("outputs")):
        return FAILED, f"job {result.get('job_id')}: {expect!r} not in its outputs"
    return OK, f"job {result.get('job_id')} ok in {result.get('duration_ms')} ms"


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    env = os.environ if environ is None else environ
    p = argparse.ArgumentParser(
        prog="python -m langflow_worker.submit",
        description="Publish one flow-run job to the runtime's queue and wait for its result.",
    )
    p.add_argument("--broker", choices=sorted(SUBMITTERS), default=env.get("WORKER_BROKER"), help="[env WORKER_BROKER]")
    p.add_argument("--url", default=env.get("WORKER_URL"), help="broker URL [env WORKER_URL]")
    p.add_argument("--queue", default=env.get("WORKER_QUEUE"), help="the runtime's job queue [env WORKER_QUEUE]")
    p.add_argument("--flow", default="echo", help="flow id or endpoint name (default: echo, built into the chart)")
    p.add_argument("--input", dest="input_value", default="hello from helm test", help="the job's input_value")
    p.add_argument("--expect", default="", help="fail unless the result's outputs contain this text")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the result (default 120)")
    p.add_argument("--job-id", default="", help="the job's id (default: submit-<uuid>)")
    ns = p.parse_args(argv)
    missing = [f"--{k}" for k in ("broker", "url", "queue") if not getattr(ns, k)]
    if missing:
        p.error("required: " + ", ".join(missing) + " (or WORKER_BROKER, WORKER_URL, WORKER_QUEUE)")
    if ns.broker not in SUBMITTERS:
        p.error(f"--broker must be one of {sorted(SUBMITTERS)} (got {ns.broker!r})")
    if ns.timeout <= 0:
        p.error("--timeout must be positive")
    return ns


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse(argv)
    job = new_job(ns.flow, ns.input_value, ns.job_id or None)
    print(f"submitting job {job['job_id']} (flow {ns.flow!r}) to {ns.broker} queue {ns.queue!r}", flush=True)
    try:
        result = SUBMITTERS[ns.broker](ns.url, ns.queue, job, ns.timeout)
    except SubmitError as exc:
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        return NO_RESULT
    except Exception as exc:  # the broker is unreachable or refused us (never print the URL: it has the password)
        print(f"FAILED: broker {ns.broker}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return NO_RESULT
    code, reason = verdict(result, ns.expect)
    print(json.dumps(result, indent=2), flush=True)
    print(f"worker: {result.get('worker')}", flush=True)
    print(("" if code == OK else "FAILED: ") + reason, file=sys.stdout if code == OK else sys.stderr, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
