"""The job and result messages: one JSON job per message, one JSON result per job (see worker/README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class PoisonMessage(ValueError):
    """A message that can never be processed (not JSON, not an object, missing fields); dead-lettered at once."""


@dataclass(frozen=True)
class Job:
    job_id: str
    flow: str
    input_value: str = ""
    input_type: str = "chat"
    output_type: str = "chat"
    tweaks: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    reply_to: str | None = None
    attempt: int = 1
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def with_attempt(self, attempt: int) -> dict[str, Any]:
        """The job's JSON object for a re-enqueue, with the attempt counter the worker keeps in it."""
        return {**self.raw, "attempt": attempt}


def parse_job(body: bytes | str) -> Job:
    """Parse one job message; raise PoisonMessage when it is not a valid job."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PoisonMessage(f"a job is a JSON object, got {type(data).__name__}")
    for key in ("job_id", "flow"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PoisonMessage(f"job field {key!r} must be a non-empty string")
    tweaks = data.get("tweaks") or {}
    if not isinstance(tweaks, dict):
        raise PoisonMessage("job field 'tweaks' must be an object")
    for key in ("input_value", "input_type", "output_type", "session_id", "reply_to"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise PoisonMessage(f"job field {key!r} must be a string")
    attempt = data.get("attempt", 1)
    if not isinstance(attempt, int) or attempt < 1:
        raise PoisonMessage("job field 'attempt' must be a positive integer")
    return Job(
        job_id=data["job_id"],
        flow=data["flow"],
        input_value=data.get("input_value") or "",
        input_type=data.get("input_type") or "chat",
        output_type=data.get("output_type") or "chat",
        tweaks=tweaks,
        session_id=data.get("session_id"),
        reply_to=data.get("reply_to") or None,
        attempt=attempt,
        raw=data,
    )


@dataclass(frozen=True)
class Result:
    job_id: str
    status: str  # "ok" | "error"
    outputs: Any
    error: str | None
    duration_ms: float
    worker: str

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "job_id": self.job_id,
                "status": self.status,
                "outputs": self.outputs,
                "error": self.error,
                "duration_ms": round(self.duration_ms, 3),
                "worker": self.worker,
            }
        ).encode()


def dead_letter_body(body: bytes, error: str, attempts: int) -> bytes:
    """What lands in the dead-letter queue: the job object with `error` and `attempts` added, or, for a
    message that is not a JSON object, {"raw": <the text>, "error", "attempts"}."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict):
        data = {"raw": body.decode("utf-8", errors="replace")}
    data.update(error=error, attempts=attempts)
    return json.dumps(data).encode()
