"""worker unit: the CLI contract (flags, WORKER_<FLAG> env, validation)."""

from __future__ import annotations

import pytest
from langflow_worker.config import env_name, parse

pytestmark = pytest.mark.worker

BASE = ["--broker", "redis", "--url", "redis://h:6379/0", "--queue", "q", "--executor", "sleep"]


def test_flags() -> None:
    c = parse([*BASE, "--prefetch", "3", "--max-retries", "5", "--sleep-seconds", "0.5", "--worker-id", "w"], {})
    assert (c.broker, c.url, c.queue, c.executor) == ("redis", "redis://h:6379/0", "q", "sleep")
    assert (c.prefetch, c.max_retries, c.sleep_seconds, c.worker_id, c.dead_letter_queue) == (3, 5, 0.5, "w", "")


def test_every_flag_from_env_and_flags_win() -> None:
    env = {
        "WORKER_BROKER": "rabbitmq",
        "WORKER_URL": "amqp://u:p@h/%2F",
        "WORKER_QUEUE": "jobs",
        "WORKER_DEAD_LETTER_QUEUE": "dlq",
        "WORKER_EXECUTOR": "langflow",
        "WORKER_LANGFLOW_URL": "http://127.0.0.1:7860",
        "WORKER_API_KEY": "k",
        "WORKER_PREFETCH": "4",
        "WORKER_METRICS_PORT": "9091",
        "HOSTNAME": "lf-runtime-3",
    }
    c = parse([], env)
    got = (c.broker, c.queue, c.dead_letter_queue, c.executor, c.api_key)
    assert got == ("rabbitmq", "jobs", "dlq", "langflow", "k")
    assert (c.prefetch, c.metrics_port, c.worker_id) == (4, 9091, "lf-runtime-3")
    assert parse(["--prefetch", "2"], env).prefetch == 2
    assert env_name("dead-letter-queue") == "WORKER_DEAD_LETTER_QUEUE"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--broker", "redis"], "required: --url"),
        ([*BASE[:-1], "langflow"], "--langflow-url"),
        ([*BASE, "--prefetch", "0"], "prefetch"),
        (["--broker", "kafka", *BASE[2:]], "invalid choice"),
    ],
)
def test_bad_command_lines_exit_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(argv, {})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
