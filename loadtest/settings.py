"""Settings of one load run, passed from `loadtest.run` to the Locust process through environment variables
(Locust imports the locustfile itself, so the environment is the one channel every user class can read)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields

ENV_KEY = "LOADTEST_SETTINGS"


@dataclass
class Settings:
    """Where to send load, as whom, and how much. Times in seconds."""

    ide_host: str = ""
    runtime_host: str = ""
    username: str = ""
    password: str = ""
    auto_login: bool = False
    api_key: str = ""
    flows: list[str] = field(default_factory=lambda: ["echo"])
    amqp_url: str = ""
    queue: str = ""
    ide_users: int = 0
    runtime_users: int = 0
    runtime_rate_per_user: float = 1.0  # flows/s each runtime user aims at (constant throughput)
    queue_users: int = 0
    queue_batch: int = 1  # jobs a queue user publishes at once before collecting their results
    queue_result_timeout: float = 60.0
    logins: int = 3  # users that log in; the others reuse their sessions (Langflow allows 5 logins/min/address)
    sessions: list[str] = field(default_factory=list)  # access tokens the users may reuse from the start
    think_min: float = 2.0
    think_max: float = 6.0
    duration: float = 60.0
    ramp: float = 0.4  # fraction of the duration over which IDE users ramp up
    shape: str = "platform"  # platform | step | steps | burst
    step_users: int = 2
    step_seconds: float = 15.0
    steps: list[int] = field(default_factory=list)  # shape "steps": IDE users per step, step_seconds each
    burst_users: int = 10
    burst_seconds: float = 10.0
    burst_pause: float = 20.0
    request_timeout: float = 30.0
    samples_path: str = ""  # JSON lines: one record per request, plus user counts
    label: str = "ours"

    def to_env(self) -> dict[str, str]:
        return {ENV_KEY: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        raw = (environ if environ is not None else os.environ).get(ENV_KEY)
        if not raw:
            return cls()
        data = json.loads(raw)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
