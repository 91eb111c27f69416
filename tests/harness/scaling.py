"""The moving parts of the scaling test: the HPA policy arithmetic, real workers that follow the runtime's pods,
a bounded step-profile publisher, a timeline recorder, and the report (reports/scaling.json + PNG).

Workers: one real `python -m langflow_worker` process per Ready runtime pod (started when kwok marks the pod
Ready, stopped with SIGTERM - the worker drains - when the pod is deleted or stops being Ready), each
consuming with the sleep executor at a fixed rate (1 / sleep_seconds jobs per second, prefetch 1).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .paths import REPORTS, ROOT
from .servers import Process, spawn

# ------------------------------------------------------------------------------------------ HPA policy math
# The HPA controller's rules (pkg/controller/podautoscaler/horizontal.go): for each policy, the replica count
# at the start of its period is the current count minus what was added (plus what was removed) within the
# last periodSeconds; Pods policies add/remove `value`, Percent policies scale by value% (rounded up when
# scaling up, truncated when scaling down); selectPolicy Max picks the largest change, Min the smallest.


def _select(rules: dict[str, Any]) -> str:
    return rules.get("selectPolicy") or "Max"


def up_limit(period_start: dict[int, int], rules: dict[str, Any]) -> int:
    """Highest replica count the scale-up rules allow, given the count at the start of each policy's period
    (keyed by periodSeconds)."""
    proposals = []
    for p in rules["policies"]:
        start = period_start[int(p["periodSeconds"])]
        if p["type"] == "Pods":
            proposals.append(start + int(p["value"]))
        else:
            proposals.append(math.ceil(start * (1 + int(p["value"]) / 100)))
    return max(proposals) if _select(rules) == "Max" else min(proposals)


def down_limit(period_start: dict[int, int], rules: dict[str, Any]) -> int:
    """Lowest replica count the scale-down rules allow (selectPolicy Max = the largest change = the lowest count)."""
    proposals = []
    for p in rules["policies"]:
        start = period_start[int(p["periodSeconds"])]
        if p["type"] == "Pods":
            proposals.append(start - int(p["value"]))
        else:
            proposals.append(int(start * (1 - int(p["value"]) / 100)))
    return min(proposals) if _select(rules) == "Max" else max(proposals)


def policy_bound_s(behavior: dict[str, Any], min_replicas: int, max_replicas: int) -> float:
    """Fastest min -> max scale-out the rendered behaviour allows, from the first scale-up to reaching max."""
    path = fastest_path(behavior, min_replicas, max_replicas)
    return float(path[-1][0] - path[0][0]) if path else 0.0


def fastest_path(behavior: dict[str, Any], start: int, target: int) -> list[tuple[int, int]]:
    """The fastest replica path start -> target the behaviour allows, as [(second, replicas)], simulating the
    controller once a second with a metric that always asks for more (or fewer). The first step is at t=0."""
    direction = "up" if target > start else "down"
    rules = behavior["scaleUp" if direction == "up" else "scaleDown"]
    periods = sorted({int(p["periodSeconds"]) for p in rules["policies"]})
    history: list[tuple[int, int]] = [(-(10**6), start)]  # (t, replicas from t on)
    current, path = start, []
    for t in range(0, 100_000):
        period_start = {per: replicas_at(history, t - per) for per in periods}
        limit = up_limit(period_start, rules) if direction == "up" else down_limit(period_start, rules)
        new = min(target, limit) if direction == "up" else max(target, limit)
        if new != current:
            history.append((t, new))
            path.append((t, new))
            current = new
        if current == target:
            break
    return path


def replicas_at(history: Sequence[tuple[float, int]], t: float) -> int:
    """Replica count at time t of a step series [(t, replicas from t on), ...] sorted by t (inclusive at t)."""
    value = history[0][1]
    for ts, r in history:
        if ts <= t:
            value = r
        else:
            break
    return value


# ------------------------------------------------------------------------------------------ timeline checks
@dataclass
class Violation:
    t: float
    what: str


def check_rates(
    changes: Sequence[tuple[float, int]],
    behavior: dict[str, Any],
    *,
    slack_s: float = 2.0,
) -> list[Violation]:
    """Every observed change of spec.replicas against the behaviour's rate limits.

    `changes` is the observed step series [(t, replicas from t on)] starting with the initial count. A change at
    t is compared with the counts observed at t - periodSeconds + slack (observations lag the controller by up to
    the sampling interval, so the window is shortened by `slack_s`; a controller breaking its policy by more than
    the slack is caught)."""
    out: list[Violation] = []
    for i in range(1, len(changes)):
        t, new = changes[i]
        old = changes[i - 1][1]
        rules = behavior["scaleUp" if new > old else "scaleDown"]
        periods = {int(p["periodSeconds"]) for p in rules["policies"]}
        before = changes[:i]
        start = {per: replicas_at(before, t - per + slack_s) for per in periods}
        if new > old:
            limit = up_limit(start, rules)
            if new > limit:
                out.append(Violation(t, f"scaled up {old} -> {new} at t={t:.1f}s; policy allows at most {limit}"))
        else:
            limit = down_limit(start, rules)
            if new < limit:
                out.append(Violation(t, f"scaled down {old} -> {new} at t={t:.1f}s; policy allows at least {limit}"))
    return out


# ----------------------------------------------------------------------------------------------- workers
def worker_command(url: str, queue: str, sleep_seconds: float, worker_id: str, broker: str = "rabbitmq") -> list[str]:
    """The app engineer's worker (CLI contract: worker/README.md), sleep executor, one slot."""
    return [
        sys.executable,
        "-m",
        "langflow_worker",
        "--broker",
        broker,
        "--url",
        url,
        "--queue",
        queue,
        "--executor",
        "sleep",
        "--sleep-seconds",
        str(sleep_seconds),
        "--prefetch",
        "1",
        "--metrics-port",
        "0",
        "--worker-id",
        worker_id,
        "--log-level",
        "WARNING",
    ]


@dataclass
class WorkerPool:
    """Keeps one worker process per Ready pod of `selector` in `namespace` (a reconcile loop in a thread)."""

    api_factory: Callable[[], Any]
    namespace: str
    selector: str
    command: Callable[[str], list[str]]
    logdir: Path
    interval: float = 0.5
    processes: dict[str, Process] = field(default_factory=dict)
    started: int = 0
    stopped: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _stopping: list[Process] = field(default_factory=list)

    def ready_pods(self, core: Any) -> set[str]:
        pods = core.list_namespaced_pod(self.namespace, label_selector=self.selector).items
        ready = set()
        for p in pods:
            if p.metadata.deletion_timestamp is not None:
                continue
            conds = p.status.conditions or []
            if any(c.type == "Ready" and c.status == "True" for c in conds):
                ready.add(p.metadata.name)
        return ready

    def reconcile(self, core: Any) -> None:
        want = self.ready_pods(core)
        for name in sorted(want - self.processes.keys()):
            env = {**os.environ, "HOSTNAME": name, "PYTHONUNBUFFERED": "1"}
            self.processes[name] = spawn(f"worker {name}", self.command(name), self.logdir / f"{name}.log", env=env)
            self.started += 1
        for name in sorted(self.processes.keys() - want):
            proc = self.processes.pop(name)
            # SIGTERM: the worker finishes its in-flight job, releases prefetched ones and exits (a pod's preStop)
            with contextlib.suppress(ProcessLookupError):
                proc.popen.terminate()
            self._stopping.append(proc)
            self.stopped += 1
        for name, proc in list(self.processes.items()):
            if not proc.alive():
                self.errors.append(f"worker for {name} exited with {proc.popen.returncode}: {proc.tail(5)}")
                del self.processes[name]
        self._stopping = [p for p in self._stopping if p.alive()]

    def _run(self) -> None:
        from kubernetes import client

        core = client.CoreV1Api(self.api_factory())
        while not self._stop.is_set():
            try:
                self.reconcile(core)
            except Exception as exc:
                self.errors.append(f"reconcile: {exc}")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="worker-pool", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        for proc in [*self.processes.values(), *self._stopping]:
            proc.stop(grace=15)
        self.processes.clear()


# --------------------------------------------------------------------------------------------- publisher
@dataclass
class Step:
    """A load step: publish `rate` jobs per second for `seconds` (rate 0 = idle)."""

    seconds: float
    rate: float


@dataclass
class PublishResult:
    job_ids: list[str] = field(default_factory=list)
    started_at: float = 0.0
    burst_start: float | None = None
    burst_end: float | None = None
    nacked: int = 0


def publish_steps(
    url: str, queue: str, steps: Sequence[Step], reply_to: str, clock: Callable[[], float], stop: threading.Event
) -> PublishResult:
    """Publish jobs (worker/README.md format) with publisher confirms, paced per step; returns what was confirmed.
    Bounded: at most sum(seconds * rate) messages."""
    import pika

    res = PublishResult(started_at=clock())
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for step in steps:
            t_end = time.monotonic() + step.seconds
            if step.rate <= 0:
                while time.monotonic() < t_end and not stop.is_set():
                    conn.process_data_events(time_limit=min(1.0, max(0.0, t_end - time.monotonic())))
                continue
            if res.burst_start is None:
                res.burst_start = clock()
            total = int(step.seconds * step.rate)
            t_start = time.monotonic()
            for i in range(total):
                if stop.is_set():
                    break
                delay = t_start + i / step.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                job_id = uuid.uuid4().hex
                body = json.dumps(
                    {"job_id": job_id, "flow": "scaling-test", "input_value": str(i), "reply_to": reply_to}
                )
                try:
                    ch.basic_publish(
                        "",
                        queue,
                        body.encode(),
                        pika.BasicProperties(content_type="application/json", delivery_mode=2, correlation_id=job_id),
                        mandatory=True,
                    )
                    res.job_ids.append(job_id)
                except (pika.exceptions.NackError, pika.exceptions.UnroutableError):
                    res.nacked += 1
            res.burst_end = clock()
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return res


def collect_results(url: str, queue: str, expected: int, timeout: float) -> dict[str, dict[str, Any]]:
    """Drain the results queue: job_id -> result (the last one per job)."""
    import pika

    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        while time.monotonic() < deadline:
            method, _props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                if len(results) >= expected:
                    break
                time.sleep(0.5)
                continue
            data = json.loads(body)
            results[data["job_id"]] = data
    finally:
        with contextlib.suppress(Exception):
            conn.close()
    return results


# --------------------------------------------------------------------------------------------- timeline
@dataclass
class QueueProbe:
    """Exact ready-message count of a queue by AMQP passive declare - what KEDA's rabbitmq scaler reads with
    protocol amqp - on a connection opened lazily in the calling thread (pika connections are not thread-safe).
    `unacked` (optional) reads the messages delivered but not acknowledged (management API, sampled)."""

    url: str
    queue: str
    unacked: Callable[[], int] | None = None
    _conn: Any = None
    _ch: Any = None

    def __call__(self) -> tuple[int, int]:
        import pika

        if self._conn is None or not self._conn.is_open:
            self._conn = pika.BlockingConnection(pika.URLParameters(self.url))
            self._ch = self._conn.channel()
        ready = int(self._ch.queue_declare(self.queue, passive=True).method.message_count)
        return ready, (self.unacked() if self.unacked else 0)

    def close(self) -> None:
        if self._conn is not None and self._conn.is_open:
            with contextlib.suppress(Exception):
                self._conn.close()


@dataclass
class Sample:
    t: float
    queue_ready: int | None
    queue_unacked: int | None
    spec_replicas: int | None
    status_replicas: int | None
    ready_replicas: int | None
    hpa_desired: int | None
    hpa_current: int | None
    workers: int
    metric: float | None = None


@dataclass
class Recorder:
    """Samples the queue, the StatefulSet, the HPA and the worker pool every `interval` seconds."""

    clock: Callable[[], float]
    queue_depth: Callable[[], tuple[int, int]]
    workload: Callable[[], tuple[int | None, int | None, int | None]]
    hpa: Callable[[], tuple[int | None, int | None]]
    workers: Callable[[], int]
    metric: Callable[[], float | None] | None = None
    interval: float = 1.0
    metric_every: int = 5
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self, n: int) -> Sample:
        t = self.clock()
        ready = unacked = None
        with contextlib.suppress(Exception):
            ready, unacked = self.queue_depth()
        spec = status = ready_r = None
        try:
            spec, status, ready_r = self.workload()
        except Exception as exc:
            self.errors.append(f"workload: {exc}")
        desired = current = None
        with contextlib.suppress(Exception):
            desired, current = self.hpa()
        metric = None
        if self.metric is not None and n % self.metric_every == 0:
            with contextlib.suppress(Exception):
                metric = self.metric()
        return Sample(t, ready, unacked, spec, status, ready_r, desired, current, self.workers(), metric)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            start = time.monotonic()
            self.samples.append(self.sample(n))
            n += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - start)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="timeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(15)

    def wait_until(self, cond: Callable[[Sample], bool], timeout: float, what: str) -> Sample:
        """Block until a sample satisfies `cond` (raises TimeoutError with the last sample)."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for s in self.samples[seen:]:
                if cond(s):
                    return s
            seen = len(self.samples)
            time.sleep(0.5)
        last = self.samples[-1] if self.samples else None
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last sample: {last}")


def replica_changes(samples: Sequence[Sample]) -> list[tuple[float, int]]:
    """spec.replicas as a step series [(t, replicas from t on)], starting with the first observed value."""
    out: list[tuple[float, int]] = []
    for s in samples:
        if s.spec_replicas is None:
            continue
        if not out or out[-1][1] != s.spec_replicas:
            out.append((s.t, s.spec_replicas))
    return out


# ------------------------------------------------------------------------------------------------ report
def write_report(report: dict[str, Any], samples: Sequence[Sample], name: str = "scaling") -> tuple[Path, Path]:
    """reports/<name>.json (report + timeline) and reports/<name>.png (queue depth and replicas over time)."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    data = {**report, "timeline": [asdict(s) for s in samples]}
    json_path = REPORTS / f"{name}.json"
    json_path.write_text(json.dumps(data, indent=1))
    png_path = REPORTS / f"{name}.png"
    plot(report, samples, png_path)
    return json_path, png_path


def plot(report: dict[str, Any], samples: Sequence[Sample], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t for s in samples]
    fig, ax_q = plt.subplots(figsize=(11, 5.5))
    ax_q.fill_between(t, [s.queue_ready or 0 for s in samples], color="tab:blue", alpha=0.25, label="queue: ready")
    ax_q.plot(t, [(s.queue_ready or 0) + (s.queue_unacked or 0) for s in samples], color="tab:blue", lw=1,
              label="queue: ready + unacked")  # fmt: skip
    ax_q.set_xlabel("seconds since start")
    ax_q.set_ylabel("messages", color="tab:blue")
    ax_r = ax_q.twinx()
    ax_r.step(t, [s.spec_replicas for s in samples], where="post", color="tab:red", lw=2, label="desired (spec)")
    ax_r.step(t, [s.ready_replicas or 0 for s in samples], where="post", color="tab:green", lw=1.2, label="ready")
    ax_r.step(t, [s.workers for s in samples], where="post", color="black", lw=0.8, ls=":", label="worker processes")
    ax_r.set_ylabel("replicas")
    ax_r.set_ylim(0, (report.get("max_replicas") or 10) + 1)
    for key, style, label in (
        ("burst_start_t", "--", "burst start"),
        ("burst_end_t", "--", "burst end"),
        ("scale_in_first_t", "-.", "first scale-in"),
    ):
        if report.get(key) is not None:
            ax_q.axvline(report[key], color="gray", ls=style, lw=1)
            ax_q.text(report[key], ax_q.get_ylim()[1] * 0.95, f" {label}", fontsize=8, color="gray", va="top")
    lines = ax_q.get_legend_handles_labels()
    lines2 = ax_r.get_legend_handles_labels()
    ax_r.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    title = (
        f"KEDA + HPA scaling of {report.get('workload', 'the runtime')}: scale-out "
        f"{report.get('scale_out_s')} s (policy bound {report.get('policy_bound_s')} s), "
        f"first scale-in {report.get('scale_in_first_s')} s after the burst, lost {report.get('messages_lost')}"
    )
    ax_q.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def relative(t: float | None) -> float | None:
    return None if t is None else round(t, 1)


def root_relative(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


@contextlib.contextmanager
def running(*things: Any) -> Iterator[None]:
    """Start objects with start()/stop() for a block; always stop them (last started, first stopped)."""
    started: list[Any] = []
    try:
        for th in things:
            th.start()
            started.append(th)
        yield
    finally:
        for th in reversed(started):
            with contextlib.suppress(Exception):
                th.stop()
