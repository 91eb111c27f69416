"""worker unit: job parsing, result and dead-letter bodies."""

from __future__ import annotations

import json

import pytest
from langflow_worker.messages import PoisonMessage, Result, dead_letter_body, parse_job

pytestmark = pytest.mark.worker


def test_parse_full_job() -> None:
    job = parse_job(
        json.dumps(
            {
                "job_id": "j1",
                "flow": "echo",
                "input_value": "hi",
                "input_type": "text",
                "output_type": "text",
                "tweaks": {"A": {"x": 1}},
                "session_id": "s",
                "reply_to": "r",
            }
        )
    )
    got = (job.job_id, job.flow, job.input_value, job.input_type, job.output_type)
    assert got == ("j1", "echo", "hi", "text", "text")
    assert job.tweaks == {"A": {"x": 1}} and job.session_id == "s" and job.reply_to == "r" and job.attempt == 1


def test_defaults_and_attempt_round_trip() -> None:
    job = parse_job(b'{"job_id": "j", "flow": "f"}')
    got = (job.input_value, job.input_type, job.output_type, job.tweaks, job.reply_to)
    assert got == ("", "chat", "chat", {}, None)
    again = parse_job(json.dumps(job.with_attempt(3)))
    assert again.attempt == 3 and again.job_id == "j"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{nope", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"flow": "f"}', "job_id"),
        (b'{"job_id": "j", "flow": ""}', "flow"),
        (b'{"job_id": "j", "flow": "f", "tweaks": [1]}', "tweaks"),
        (b'{"job_id": "j", "flow": "f", "reply_to": 5}', "reply_to"),
        (b'{"job_id": "j", "flow": "f", "attempt": 0}', "attempt"),
    ],
)
def test_poison_messages(body: bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage, match=reason):
        parse_job(body)


def test_result_json_has_the_documented_fields() -> None:
    r = json.loads(Result("j", "ok", [{"a": 1}], None, 12.3456, "w-0").to_json())
    expected = {"job_id": "j", "status": "ok", "outputs": [{"a": 1}], "error": None, "duration_ms": 12.346}
    assert r == {**expected, "worker": "w-0"}


def test_dead_letter_bodies() -> None:
    d = json.loads(dead_letter_body(b'{"job_id": "j", "flow": "f"}', "boom", 4))
    assert d == {"job_id": "j", "flow": "f", "error": "boom", "attempts": 4}
    raw = json.loads(dead_letter_body(b"garbage", "poison", 1))
    assert raw == {"raw": "garbage", "error": "poison", "attempts": 1}
