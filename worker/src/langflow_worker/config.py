"""Command line and environment: every flag --some-flag can also be given as WORKER_SOME_FLAG."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    broker: str
    url: str
    queue: str
    dead_letter_queue: str
    executor: str
    langflow_url: str
    api_key: str
    sleep_seconds: float
    prefetch: int
    max_retries: int
    metrics_port: int
    worker_id: str
    job_timeout: float
    startup_timeout: float
    visibility_timeout: int
    region: str
    sqs_endpoint: str
    delivery_limit: int
    heartbeat_ttl: int
    log_level: str


FLAGS: list[tuple[str, type, object, str]] = [
    ("broker", str, None, "rabbitmq | redis | sqs"),
    ("url", str, None, "broker URL: amqp://..., redis://..., or the SQS queue URL"),
    ("queue", str, None, "queue (RabbitMQ queue, Redis list, SQS queue name/URL) to consume jobs from"),
    ("dead-letter-queue", str, "", 'where jobs go after the last retry ("": RabbitMQ DLX / SQS redrive)'),
    ("executor", str, None, "langflow | sleep"),
    ("langflow-url", str, "", "base URL of Langflow (executor langflow)"),
    ("api-key", str, "", "Langflow API key sent as x-api-key"),
    ("sleep-seconds", float, 1.0, "seconds per job (executor sleep)"),
    ("prefetch", int, 1, "execution slots = jobs taken from the broker at once"),
    ("max-retries", int, 3, "retries after the first failed attempt, then dead-letter"),
    ("metrics-port", int, 9090, "port of /metrics (0: none)"),
    ("worker-id", str, "", "this worker's identity (default: hostname = the StatefulSet pod name)"),
    ("job-timeout", float, 300.0, "HTTP timeout of one Langflow run, seconds"),
    ("startup-timeout", float, 300.0, "wait this long for Langflow's /health_check before consuming"),
    ("visibility-timeout", int, 600, "SQS visibility timeout, seconds (extended while a job runs)"),
    ("region", str, "", "AWS region (SQS); default from AWS_REGION"),
    ("sqs-endpoint", str, "", "SQS endpoint override (local SQS, VPC endpoint)"),
    ("delivery-limit", int, 10, "RabbitMQ x-delivery-limit of a queue the worker creates"),
    ("heartbeat-ttl", int, 30, "Redis: seconds after which a silent worker's processing list is reclaimed"),
    ("log-level", str, "INFO", "DEBUG | INFO | WARNING | ERROR"),
]
CHOICES = {"broker": ("rabbitmq", "redis", "sqs"), "executor": ("langflow", "sleep")}


def env_name(flag: str) -> str:
    return "WORKER_" + flag.upper().replace("-", "_")


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    env = os.environ if environ is None else environ
    p = argparse.ArgumentParser(
        prog="python -m langflow_worker",
        description="Consume Langflow flow-run jobs from a queue, run them, publish the results.",
        epilog="Every flag can also be set as an environment variable WORKER_<FLAG> (e.g. WORKER_PREFETCH=4).",
    )
    missing: list[str] = []
    for flag, typ, default, text in FLAGS:
        value = env.get(env_name(flag), default)
        if value is None:
            missing.append(flag)
        p.add_argument(
            f"--{flag}",
            type=typ,
            default=typ(value) if value is not None else None,
            choices=CHOICES.get(flag),
            help=f"{text} [env {env_name(flag)}]",
        )
    ns = p.parse_args(argv)
    absent = [f for f in missing if getattr(ns, f.replace("-", "_")) is None]
    if absent:
        p.error("required: " + ", ".join(f"--{f} (or {env_name(f)})" for f in absent))
    if ns.executor == "langflow" and not ns.langflow_url:
        p.error("--executor langflow needs --langflow-url (or WORKER_LANGFLOW_URL)")
    if ns.prefetch < 1:
        p.error("--prefetch must be at least 1")
    if ns.max_retries < 0:
        p.error("--max-retries must not be negative")
    if not ns.worker_id:
        ns.worker_id = env.get("HOSTNAME") or socket.gethostname()
    if not ns.region:
        ns.region = env.get("AWS_REGION", "")
    return Config(**vars(ns))
