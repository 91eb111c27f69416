"""Broker adapters. Every call happens on the worker's main thread (pika is not thread-safe).

Semantics shared by all three: a job is removed from the queue only after it finished (ack / LREM / delete);
a retry re-enqueues the job with its `attempt` counter raised, then removes the original; a dead-letter puts
the job (with `error`, `attempts`) on the dead-letter queue, then removes the original; a message not started
when the worker drains is given back unchanged.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

REPLICATION_TIMEOUT_MS = 5000


class NotReplicated(RuntimeError):
    """A Redis write that no replica confirmed in time: not durable, so not acknowledged (at-least-once)."""


def replicated(client: Any, what: str, timeout_ms: int = REPLICATION_TIMEOUT_MS) -> None:
    """Block until a replica holds the connection's writes so far (WAIT 1), when the primary has replicas.

    Redis replicates asynchronously: a write the primary confirmed but no replica received is lost when Sentinel
    promotes a replica. No server setting makes a write synchronous (min-replicas-to-write only refuses writes when
    the replicas have fallen behind), so every write that acknowledges a job - a producer's enqueue, a worker's
    result, retry or dead-letter move - is followed by WAIT before it counts as done.
    """
    info = client.info("replication")
    if info.get("role") != "master" or int(info.get("connected_slaves", 0)) == 0:
        return  # a single Redis (no replicas): nothing to wait for
    acked = client.wait(1, timeout_ms)
    if acked < 1:
        raise NotReplicated(f"{what}: no replica confirmed it within {timeout_ms} ms (WAIT 1 returned {acked})")


log = logging.getLogger("langflow_worker.broker")


@dataclass
class Delivery:
    body: bytes
    handle: Any
    correlation_id: str | None = None
    delivery_count: int = 1
    received_at: float = field(default_factory=time.monotonic)


class Broker(Protocol):
    def connect(self) -> None: ...
    def receive(self, max_messages: int, timeout: float) -> list[Delivery]: ...
    def ack(self, d: Delivery) -> None: ...
    def retry(self, d: Delivery, body: bytes) -> None: ...
    def dead_letter(self, d: Delivery, body: bytes) -> None: ...
    def release(self, d: Delivery) -> None: ...
    def publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None: ...
    def pump(self, timeout: float, in_flight: list[Delivery]) -> None: ...
    def stop_consuming(self) -> list[Delivery]: ...
    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------- RabbitMQ
class RabbitMQBroker:
    """A quorum queue with a dead-letter queue. The queues are declared passively when they exist (e.g. made
    by the broker chart's definitions) and otherwise created as quorum queues whose dead-letter exchange
    routes to the dead-letter queue; `x-delivery-limit` dead-letters a job that keeps killing its worker."""

    def __init__(self, url: str, queue: str, dead_letter_queue: str, prefetch: int, delivery_limit: int = 10) -> None:
        self.url = url
        self.queue = queue
        self.dlq = dead_letter_queue
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self._pending: deque[Delivery] = deque()
        self._conn: Any = None
        self._ch: Any = None
        self._tag: str | None = None

    def connect(self) -> None:
        import pika

        self._conn = pika.BlockingConnection(pika.URLParameters(self.url))
        if self.dlq:
            self._declare(self.dlq, {"x-queue-type": "quorum"})
        args: dict[str, Any] = {"x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit}
        if self.dlq:
            args.update({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": self.dlq})
        self._declare(self.queue, args)
        self._ch = self._conn.channel()
        self._ch.confirm_delivery()
        self._ch.basic_qos(prefetch_count=self.prefetch)
        self._tag = self._ch.basic_consume(self.queue, self._on_message)

    def _declare(self, name: str, arguments: dict[str, Any]) -> None:
        import pika.exceptions

        ch = self._conn.channel()
        try:
            ch.queue_declare(name, passive=True)
            ch.close()
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code != 404:
                raise
            ch = self._conn.channel()
            ch.queue_declare(name, durable=True, arguments=arguments)
            ch.close()
            log.info("declared queue %s %s", name, arguments)

    def _on_message(self, _ch: Any, method: Any, props: Any, body: bytes) -> None:
        headers = props.headers or {}
        count = int(headers.get("x-delivery-count", 0)) + 1
        self._pending.append(Delivery(body, (method.delivery_tag, props), props.correlation_id, count))

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        if not self._pending:
            self._conn.process_data_events(time_limit=timeout)
        out: list[Delivery] = []
        while self._pending and len(out) < max_messages:
            out.append(self._pending.popleft())
        return out

    def _publish(self, routing_key: str, body: bytes, props: Any) -> None:
        self._ch.basic_publish("", routing_key, body, props, mandatory=True)

    def _props(self, d: Delivery, extra_headers: dict[str, Any] | None = None) -> Any:
        import pika

        old = d.handle[1]
        headers = {k: v for k, v in (old.headers or {}).items() if not k.startswith("x-")}
        headers.update(extra_headers or {})
        return pika.BasicProperties(
            content_type="application/json",
            delivery_mode=2,
            correlation_id=old.correlation_id,
            reply_to=old.reply_to,
            headers=headers,
        )

    def ack(self, d: Delivery) -> None:
        self._ch.basic_ack(d.handle[0])

    def retry(self, d: Delivery, body: bytes) -> None:
        self._publish(self.queue, body, self._props(d))
        self.ack(d)

    def dead_letter(self, d: Delivery, body: bytes) -> None:
        if self.dlq:
            self._publish(self.dlq, body, self._props(d))
            self.ack(d)
        else:
            self._ch.basic_reject(d.handle[0], requeue=False)

    def release(self, d: Delivery) -> None:
        self._ch.basic_nack(d.handle[0], requeue=True)

    def publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        import pika
        import pika.exceptions

        props = pika.BasicProperties(content_type="application/json", delivery_mode=2, correlation_id=correlation_id)
        try:
            self._publish(reply_to, body, props)
        except pika.exceptions.UnroutableError:
            log.warning("result for %s dropped: no queue %r to reply to", correlation_id, reply_to)

    def pump(self, timeout: float, in_flight: list[Delivery]) -> None:
        self._conn.process_data_events(time_limit=timeout)

    def stop_consuming(self) -> list[Delivery]:
        if self._tag:
            self._ch.basic_cancel(self._tag)
            self._tag = None
        left = list(self._pending)
        self._pending.clear()
        return left

    def close(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.close()


# ------------------------------------------------------------------------------------------------ Redis
class RedisBroker:
    """A reliable list: producers LPUSH jobs; the worker BLMOVEs each into its own processing list
    `<queue>:processing:<worker id>` and LREMs it when done. A live worker refreshes `<queue>:worker:<id>`
    (TTL); at start and every `reclaim_interval` the jobs of processing lists whose worker key expired
    (dead workers, including this worker's previous life) go back to the head of the queue."""

    def __init__(self, url: str, queue: str, dead_letter_queue: str, worker_id: str, heartbeat_ttl: int = 30) -> None:
        self.url = url
        self.queue = queue
        self.dlq = dead_letter_queue
        self.worker_id = worker_id
        self.processing = f"{queue}:processing:{worker_id}"
        self.alive_key = f"{queue}:worker:{worker_id}"
        self.heartbeat_ttl = heartbeat_ttl
        self._r: Any = None
        self._last_beat = 0.0
        self._last_reclaim = 0.0

    def connect(self) -> None:
        import redis

        self._r = redis.Redis.from_url(self.url, socket_keepalive=True, health_check_interval=30)
        self._r.ping()
        self.reclaim(include_own=True)
        self._beat(force=True)

    def _beat(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_beat > self.heartbeat_ttl / 3:
            self._r.set(self.alive_key, "1", ex=self.heartbeat_ttl)
            self._last_beat = now
        if now - self._last_reclaim > self.heartbeat_ttl:
            self.reclaim(include_own=False)

    def reclaim(self, include_own: bool) -> int:
        """Move jobs of dead workers' processing lists back to the head of the queue; returns how many."""
        self._last_reclaim = time.monotonic()
        moved = 0
        prefix = f"{self.queue}:processing:"
        for key in self._r.scan_iter(match=f"{prefix}*", count=100):
            name = key.decode() if isinstance(key, bytes) else key
            owner = name[len(prefix) :]
            if owner == self.worker_id and not include_own:
                continue
            if owner != self.worker_id and self._r.exists(f"{self.queue}:worker:{owner}"):
                continue
            while self._r.lmove(name, self.queue, "RIGHT", "RIGHT") is not None:
                moved += 1
        if moved:
            log.warning("requeued %d job(s) left in processing lists of stopped workers", moved)
        return moved

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        self._beat()
        out: list[Delivery] = []
        first = self._r.blmove(self.queue, self.processing, max(timeout, 0.01), "RIGHT", "LEFT")
        if first is None:
            return out
        out.append(Delivery(first, first))
        while len(out) < max_messages:
            raw = self._r.lmove(self.queue, self.processing, "RIGHT", "LEFT")
            if raw is None:
                break
            out.append(Delivery(raw, raw))
        return out

    def ack(self, d: Delivery) -> None:
        self._r.lrem(self.processing, 1, d.handle)

    def _replace(self, target: str, body: bytes, d: Delivery, head: bool = False) -> None:
        p = self._r.pipeline(transaction=True)
        if head:
            p.rpush(target, body)
        else:
            p.lpush(target, body)
        p.lrem(self.processing, 1, d.handle)
        p.execute()
        replicated(self._r, f"moving a job to {target}")

    def retry(self, d: Delivery, body: bytes) -> None:
        self._replace(self.queue, body, d)

    def dead_letter(self, d: Delivery, body: bytes) -> None:
        self._replace(self.dlq or f"{self.queue}:dead", body, d)

    def release(self, d: Delivery) -> None:
        self._replace(self.queue, d.handle, d, head=True)

    def publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        self._r.lpush(reply_to, body)
        replicated(self._r, f"the result on {reply_to}")

    def pump(self, timeout: float, in_flight: list[Delivery]) -> None:
        self._beat()
        if timeout > 0:
            time.sleep(timeout)

    def stop_consuming(self) -> list[Delivery]:
        return []

    def close(self) -> None:
        if self._r is not None:
            self._r.delete(self.alive_key)
            self._r.close()


# -------------------------------------------------------------------------------------------------- SQS
class SQSBroker:
    """An SQS queue. A received job stays invisible for `visibility_timeout` seconds, extended while it runs;
    the queue's redrive policy (maxReceiveCount → dead-letter queue) catches jobs that crash their worker.
    Credentials come from the environment (pod identity / IRSA); `endpoint` points at a local SQS for tests."""

    def __init__(
        self,
        url: str,
        dead_letter_queue: str,
        region: str | None,
        endpoint: str | None,
        visibility_timeout: int = 600,
    ) -> None:
        self.url = url
        self.dlq = dead_letter_queue
        self.region = region
        self.endpoint = endpoint
        self.visibility_timeout = visibility_timeout
        self._sqs: Any = None
        self._urls: dict[str, str] = {}

    def connect(self) -> None:
        import boto3

        self._sqs = boto3.client("sqs", region_name=self.region or None, endpoint_url=self.endpoint or None)
        self.url = self._queue_url(self.url)
        if self.dlq:
            self.dlq = self._queue_url(self.dlq)

    def _queue_url(self, name_or_url: str) -> str:
        if name_or_url.startswith(("http://", "https://")):
            return name_or_url
        if name_or_url not in self._urls:
            self._urls[name_or_url] = self._sqs.get_queue_url(QueueName=name_or_url)["QueueUrl"]
        return self._urls[name_or_url]

    def receive(self, max_messages: int, timeout: float) -> list[Delivery]:
        r = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=max(0, min(20, int(timeout))),
            VisibilityTimeout=self.visibility_timeout,
            AttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        if not r.get("Messages") and int(timeout) == 0:
            time.sleep(0.25)  # a short poll found nothing: pace the loop (SQS bills per request)
        out = []
        for m in r.get("Messages", []):
            corr = (m.get("MessageAttributes", {}).get("correlation_id") or {}).get("StringValue")
            count = int(m.get("Attributes", {}).get("ApproximateReceiveCount", 1))
            out.append(Delivery(m["Body"].encode(), m["ReceiptHandle"], corr, count))
        return out

    def ack(self, d: Delivery) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=d.handle)

    def _send(self, url: str, body: bytes, correlation_id: str | None) -> None:
        attrs = {"correlation_id": {"DataType": "String", "StringValue": correlation_id}} if correlation_id else {}
        self._sqs.send_message(QueueUrl=url, MessageBody=body.decode(), MessageAttributes=attrs)

    def retry(self, d: Delivery, body: bytes) -> None:
        self._send(self.url, body, d.correlation_id)
        self.ack(d)

    def dead_letter(self, d: Delivery, body: bytes) -> None:
        if self.dlq:
            self._send(self.dlq, body, d.correlation_id)
            self.ack(d)
        else:  # visible again at once; the redrive policy moves it after maxReceiveCount
            self.release(d)

    def release(self, d: Delivery) -> None:
        self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=d.handle, VisibilityTimeout=0)

    def publish_result(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        self._send(self._queue_url(reply_to), body, correlation_id)

    def pump(self, timeout: float, in_flight: list[Delivery]) -> None:
        now = time.monotonic()
        for d in in_flight:
            if now - d.received_at > self.visibility_timeout / 2:
                self._sqs.change_message_visibility(
                    QueueUrl=self.url, ReceiptHandle=d.handle, VisibilityTimeout=self.visibility_timeout
                )
                d.received_at = now
        if timeout > 0:
            time.sleep(timeout)

    def stop_consuming(self) -> list[Delivery]:
        return []

    def close(self) -> None:
        self._sqs = None
