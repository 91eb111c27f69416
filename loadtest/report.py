"""The report: figures from the per-request samples, reports/load.json, plots and a terminal table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TARGETS = {"runtime_p95_ms": 1000.0, "ide_p95_ms": 100.0, "error_rate": 0.01}
# "ours at least as fast as the baseline": p95s within this factor of the baseline's, throughput at least 1/it.
BASELINE_TOLERANCE = 1.10


@dataclass
class Samples:
    requests: list[dict[str, Any]]
    users: list[tuple[float, int]]

    @classmethod
    def load(cls, path: Path) -> Samples:
        reqs: list[dict[str, Any]] = []
        users: list[tuple[float, int]] = []
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if "users" in rec:
                users.append((rec["t"], int(rec["users"])))
            else:
                reqs.append(rec)
        return cls(reqs, users)

    def of(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["name"].startswith(prefix)]


def percentile(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def summarise(samples: Samples, *, label: str, load: dict[str, Any]) -> dict[str, Any]:
    """The report's figures for one system under test."""
    reqs = samples.requests
    ide = [r for r in samples.of("ide:") if "rate-limited" not in r["name"]]
    runs = samples.of("runtime:") + samples.of("queue:")
    sync = samples.of("runtime:")
    queued = samples.of("queue:")
    t0 = min((r["t"] for r in reqs), default=0.0)
    t1 = max((r["t"] for r in reqs), default=0.0)
    span = max(t1 - t0, 1e-9)
    failures = sum(1 for r in reqs if not r["ok"])
    per_name: dict[str, dict[str, Any]] = {}
    for name in sorted({r["name"] for r in reqs}):
        ms = [r["ms"] for r in reqs if r["name"] == name]
        per_name[name] = {
            "requests": len(ms),
            "failures": sum(1 for r in reqs if r["name"] == name and not r["ok"]),
            "p50_ms": percentile(ms, 50),
            "p95_ms": percentile(ms, 95),
            "p99_ms": percentile(ms, 99),
        }
    ramp_end = t0 + float(load.get("ramp_s") or 0.0)
    steady_ide = [r["ms"] for r in ide if r["t"] >= ramp_end]
    return {
        "label": label,
        "runtime_p95_ms": percentile([r["ms"] for r in sync], 95),
        "runtime_p50_ms": percentile([r["ms"] for r in sync], 50),
        "runtime_p99_ms": percentile([r["ms"] for r in sync], 99),
        "queue_p95_ms": percentile([r["ms"] for r in queued], 95),
        "ide_p95_ms": percentile([r["ms"] for r in ide], 95),
        "ide_p50_ms": percentile([r["ms"] for r in ide], 50),
        "ide_p99_ms": percentile([r["ms"] for r in ide], 99),
        # after the IDE users' ramp: editing with sessions open, without the burst of editors opening
        "ide_steady_p95_ms": percentile(steady_ide, 95),
        "flows_per_s": round(sum(1 for r in runs if r["ok"]) / span, 2) if runs else 0.0,
        "error_rate": round(failures / len(reqs), 5) if reqs else None,
        "requests": len(reqs),
        "failures": failures,
        "users": max((u for _, u in samples.users), default=0),
        "login_rate_limited": len(samples.of("ide:login rate-limited")),
        "duration_s": round(span, 1),
        "load": load,
        "endpoints": per_name,
    }


def verdicts(ours: dict[str, Any], baseline: dict[str, Any] | None) -> list[tuple[str, str, str, bool | None]]:
    """(target, ours, baseline, met) rows; met None = could not be judged (no data)."""
    rows: list[tuple[str, str, str, bool | None]] = []

    def fmt(v: Any, unit: str) -> str:
        if v is None:
            return "-"
        return f"{v * 100:.2f} %" if unit == "%" else f"{v:.0f} {unit}" if unit == "ms" else f"{v:.2f} {unit}"

    b = baseline or {}
    for key, title, unit in (
        ("runtime_p95_ms", "runtime p95 < 1 s", "ms"),
        ("ide_p95_ms", "IDE API p95 < 100 ms", "ms"),
        ("error_rate", "error rate < 1 %", "%"),
    ):
        v = ours.get(key)
        rows.append((title, fmt(v, unit), fmt(b.get(key), unit), None if v is None else v < TARGETS[key]))
    if baseline:
        checks = []
        for key in ("runtime_p95_ms", "ide_p95_ms"):
            if ours.get(key) is not None and b.get(key) is not None:
                checks.append(ours[key] <= b[key] * BASELINE_TOLERANCE)
        if ours.get("flows_per_s") and b.get("flows_per_s"):
            checks.append(ours["flows_per_s"] * BASELINE_TOLERANCE >= b["flows_per_s"])
        rows.append(
            (
                f"ours >= baseline (p95s and flows/s, {int((BASELINE_TOLERANCE - 1) * 100)} % noise margin)",
                fmt(ours.get("flows_per_s"), "flows/s"),
                fmt(b.get("flows_per_s"), "flows/s"),
                all(checks) if checks else None,
            )
        )
    return rows


def table(ours: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    rows = verdicts(ours, baseline)
    head = ("target", "ours", "baseline", "")
    mark = {True: "met", False: "MISSED", None: "n/a"}
    cells = [head, *[(t, o, b, mark[m]) for t, o, b, m in rows]]
    widths = [max(len(str(r[i])) for r in cells) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    load = ours.get("load", {})
    lines.append(
        f"IDE p95 after the ramp (sessions open): ours {ours.get('ide_steady_p95_ms')} ms, baseline "
        f"{(baseline or {}).get('ide_steady_p95_ms')} ms"
    )
    lines.append(
        f"load: {ours.get('users')} users ({load.get('ide_users')} IDE, {load.get('runtime_users')} runtime at "
        f"{load.get('runtime_rate')} flows/s target, {load.get('queue_users')} queue), {ours.get('requests')} "
        f"requests in {ours.get('duration_s')} s; scale factor {load.get('scale')} "
        f"(seed: 1000 IDE users, 100 flows/s)"
    )
    return "\n".join(lines)


def _windows(reqs: list[dict[str, Any]], t0: float, width: float) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for r in reqs:
        out.setdefault(int((r["t"] - t0) // width), []).append(r)
    return out


def plot(systems: dict[str, Samples], out_dir: Path, width: float = 5.0) -> list[Path]:
    """load-latency.png (p50/p95/p99 per window, IDE and runtime) and load-throughput.png (req/s, flows/s,
    users) with one line per system under test, time from each run's start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "load-latency.png", out_dir / "load-throughput.png"]
    fig, axes = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    colors = {label: f"C{i}" for i, label in enumerate(systems)}
    for ax, prefix, title in ((axes[0], "ide:", "IDE API"), (axes[1], ("runtime:", "queue:"), "flow runs")):
        for label, s in systems.items():
            reqs = [r for r in s.requests if r["name"].startswith(prefix)]
            if not reqs:
                continue
            t0 = min(r["t"] for r in s.requests)
            w = _windows(reqs, t0, width)
            xs = sorted(w)
            for q, style in ((50, ":"), (95, "-"), (99, "--")):
                ys = [float(np.percentile([r["ms"] for r in w[x]], q)) for x in xs]
                ax.plot([x * width for x in xs], ys, style, color=colors[label], label=f"{label} p{q}")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"{title} latency per {width:.0f} s window")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, ncol=3)
    axes[1].set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax2 = ax.twinx()
    for label, s in systems.items():
        c = colors[label]
        if not s.requests:
            continue
        t0 = min(r["t"] for r in s.requests)
        w = _windows(s.requests, t0, width)
        xs = sorted(w)
        ax.plot([x * width for x in xs], [len(w[x]) / width for x in xs], "-", color=c, label=f"{label} requests/s")
        ax.plot(
            [x * width for x in xs],
            [sum(1 for r in w[x] if r["ok"] and r["name"].startswith(("runtime:", "queue:"))) / width for x in xs],
            "--",
            color=c,
            label=f"{label} flows/s",
        )
        if s.users:
            ax2.plot([t - t0 for t, _ in s.users], [u for _, u in s.users], ":", color=c, label=f"{label} users")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("per second")
    ax2.set_ylabel("users")
    ax.set_title("throughput and users")
    ax.grid(True, alpha=0.3)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)
    return paths
