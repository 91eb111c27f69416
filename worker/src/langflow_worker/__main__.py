"""python -m langflow_worker: run one worker until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .brokers import Broker, RabbitMQBroker, RedisBroker, SQSBroker
from .config import Config, parse
from .executors import Executor, LangflowExecutor, SleepExecutor
from .metrics import Metrics
from .worker import Worker

log = logging.getLogger("langflow_worker")


def make_broker(c: Config) -> Broker:
    if c.broker == "rabbitmq":
        return RabbitMQBroker(c.url, c.queue, c.dead_letter_queue, c.prefetch, c.delivery_limit)
    if c.broker == "redis":
        return RedisBroker(c.url, c.queue, c.dead_letter_queue, c.worker_id, c.heartbeat_ttl)
    queue = c.queue if c.queue.startswith(("http://", "https://")) else (c.url or c.queue)
    return SQSBroker(queue, c.dead_letter_queue, c.region, c.sqs_endpoint, c.visibility_timeout)


def make_executor(c: Config) -> Executor:
    if c.executor == "sleep":
        return SleepExecutor(c.sleep_seconds)
    return LangflowExecutor(c.langflow_url, c.api_key, c.job_timeout)


def main(argv: Sequence[str] | None = None) -> int:
    c = parse(argv)
    logging.basicConfig(
        level=c.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s [" + c.worker_id + "] %(message)s"
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing in-flight jobs, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = Metrics()
    metrics.serve(c.metrics_port)
    executor = make_executor(c)
    if isinstance(executor, LangflowExecutor) and c.startup_timeout > 0:
        executor.wait_ready(c.startup_timeout, stop)
    broker = make_broker(c)
    broker.connect()
    log.info("consuming %s queue %r with %d slot(s), executor %s", c.broker, c.queue, c.prefetch, c.executor)
    worker = Worker(
        broker, executor, slots=c.prefetch, max_retries=c.max_retries, worker_id=c.worker_id, metrics=metrics
    )
    try:
        worker.run(stop)
    except Exception:
        # the broker connection is gone: jobs in flight cannot be acknowledged any more and will be redelivered;
        # exit at once (without waiting for their threads) so Kubernetes restarts the container
        log.exception("broker connection lost; exiting so the container restarts")
        logging.shutdown()
        os._exit(3)
    log.info("drained, exiting")
    return 0


if __name__ == "__main__":
    sys.exit(main())
