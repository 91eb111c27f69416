"""Load shapes. Each is a Locust LoadTestShape subclass reading its parameters from `Settings`.

- PlatformShape: the seed's picture scaled down. The fixed-count users (runtime at a target rate, queue
  publishers) start at once; IDE users ramp linearly to their target over `ramp` x duration, then hold.
- StepShape: users rise by `step_users` every `step_seconds` (for finding the knee / driving scale-out).
- StepsShape: users take the values of `steps` in turn, `step_seconds` each (the capacity curve,
  loadtest/capacity.py); a step's new users arrive at a tenth of the largest step per second.
- BurstShape: `burst_users` for `burst_seconds`, then a pause with none, repeated (queue bursts for KEDA).
All stop by themselves after `duration` seconds.
"""

from __future__ import annotations

from locust import LoadTestShape

from .settings import Settings


class _FromSettings(LoadTestShape):
    """A shape whose parameters are the run's Settings (read from the environment, see settings.py)."""

    abstract = True  # Locust: not a shape of its own

    def __init__(self) -> None:
        super().__init__()
        self.s = Settings.from_env()


class PlatformShape(_FromSettings):
    def fixed_users(self) -> int:
        return self.s.runtime_users + self.s.queue_users

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.s.duration:
            return None
        ramp_s = max(1.0, self.s.ramp * self.s.duration)
        ide = round(self.s.ide_users * min(1.0, t / ramp_s))
        total = self.fixed_users() + ide
        return max(total, 1), max(self.fixed_users(), self.s.ide_users / ramp_s, 1.0)


class StepShape(_FromSettings):
    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.s.duration:
            return None
        users = self.s.step_users * (1 + int(t // self.s.step_seconds))
        return users, float(self.s.step_users)


class StepsShape(_FromSettings):
    def tick(self) -> tuple[int, float] | None:
        i = int(self.get_run_time() // self.s.step_seconds)
        if not self.s.steps or i >= len(self.s.steps):
            return None
        return self.s.steps[i], max(1.0, max(self.s.steps) / 10)


class BurstShape(_FromSettings):
    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        if t >= self.s.duration:
            return None
        period = self.s.burst_seconds + self.s.burst_pause
        in_burst = (t % period) < self.s.burst_seconds
        return (self.s.burst_users, float(self.s.burst_users)) if in_burst else (0, float(self.s.burst_users))


SHAPES: dict[str, type[LoadTestShape]] = {
    "platform": PlatformShape,
    "step": StepShape,
    "steps": StepsShape,
    "burst": BurstShape,
}
