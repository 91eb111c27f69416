"""python -m loadtest.run [--host URL] [--duration S]: run the load scenarios and write the report.

Without --host, a local installation is started from the charts (loadtest/local.py): ours (IDE, runtime,
worker on PostgreSQL/RabbitMQ) and the baseline (Langflow's defaults), and the same load is run against each
in turn, then the queued scenario against ours. With --host, load goes to that installation (give the
superuser's credentials and an API key through flags or LANGFLOW_SUPERUSER / LANGFLOW_SUPERUSER_PASSWORD /
LANGFLOW_API_KEY), without a baseline.

Load is the seed's (1000 concurrent IDE users, 100 flows/s) divided by --scale (default 100 for a shared
2-core machine running every process of the platform: 10 IDE users, 1 flow/s; at 20 the IDE saturates).
Outputs in --out (reports/): load.json, load-<system>.html (Locust),
load-latency.png, load-throughput.png, and a table of targets met/missed on stdout. Exit status 0 even when a
target is missed (the table says so); non-zero when the run itself failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import requests

from loadtest import profile, report
from loadtest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SEED_IDE_USERS = 1000
SEED_FLOWS_PER_S = 100.0


def token(host: str, settings: Settings) -> str:
    """A session for the harness's own (unmeasured) calls, taken before the load uses up the login limiter."""
    if settings.auto_login:
        r = requests.get(f"{host}/api/v1/auto_login", timeout=30)
    else:
        form = {"username": settings.username, "password": settings.password}
        r = requests.post(f"{host}/api/v1/login", data=form, timeout=30)
    r.raise_for_status()
    return str(r.json()["access_token"])


def cleanup(host: str, access_token: str, limit: int = 1000) -> int:
    """Delete the IDE users' "loadtest-..." flows (bounded; not measured). Returns how many were deleted."""
    try:
        headers = {"Authorization": f"Bearer {access_token}"}

        def ours() -> list[str]:
            flows = requests.get(
                f"{host}/api/v1/flows/", params={"header_flows": "true", "get_all": "true"}, headers=headers, timeout=60
            ).json()
            return [f["id"] for f in flows if str(f.get("name", "")).startswith("loadtest-")][:limit]

        ids = ours()
        for i in range(0, len(ids), 50):
            requests.delete(f"{host}/api/v1/flows/", json=ids[i : i + 50], headers=headers, timeout=120)
        return len(ids) - len(ours())
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return 0


def locust(
    settings: Settings, out: Path, name: str, classes: list[str], profile_pids: dict[str, int] | None = None
) -> Path:
    """Run Locust headless with `settings`; returns the samples file. Bounded by duration + 180 s.
    `profile_pids` ({label: pid}) are sampled with py-spy during the run (profile-<label>.txt)."""
    samples = out / f"load-{name}.samples.jsonl"
    settings = replace(settings, samples_path=str(samples), label=name)
    env = {**os.environ, **settings.to_env(), "PYTHONPATH": str(ROOT)}
    cmd = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        str(ROOT / "loadtest" / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "15",
        "--html",
        str(out / f"load-{name}.html"),
        "--csv",
        str(out / f"load-{name}"),
        *classes,
    ]
    # no --host: Locust would give it to every user class, and IDE and runtime users talk to different hosts
    print(f"==> locust {name}: {' '.join(classes)} for {settings.duration:.0f}s", flush=True)
    recordings = [profile.record(pid, settings.duration, out, label) for label, pid in (profile_pids or {}).items()]
    proc = subprocess.run(
        cmd, env=env, cwd=ROOT, timeout=settings.duration + 180, capture_output=True, text=True, check=False
    )
    for rec in recordings:
        rec.wait(30)
    (out / f"load-{name}.locust.log").write_text(proc.stdout + proc.stderr)
    if not samples.exists():
        raise RuntimeError(f"locust {name} wrote no samples (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return samples


def load_settings(args: argparse.Namespace) -> Settings:
    ide_users = max(1, math.ceil(SEED_IDE_USERS / args.scale))
    rate = SEED_FLOWS_PER_S / args.scale
    return Settings(
        ide_users=ide_users,
        runtime_users=max(1, math.ceil(rate / args.rate_per_user)),
        runtime_rate_per_user=rate / max(1, math.ceil(rate / args.rate_per_user)),
        think_min=args.think[0],
        think_max=args.think[1],
        duration=args.duration,
        queue_batch=args.queue_batch,
    )


def load_description(s: Settings, scale: float) -> dict[str, Any]:
    return {
        "scale": scale,
        "ide_users": s.ide_users,
        "runtime_users": s.runtime_users,
        "runtime_rate": round(s.runtime_users * s.runtime_rate_per_user, 2),
        "queue_users": s.queue_users,
        "think_s": [s.think_min, s.think_max],
        "duration_s": s.duration,
        "ramp_s": round(s.ramp * s.duration, 1) if s.ide_users else 0.0,
    }


def run_remote(args: argparse.Namespace, base: Settings, out: Path) -> dict[str, Any]:
    s = replace(
        base,
        ide_host=args.host.rstrip("/"),
        runtime_host=(args.runtime_host or args.host).rstrip("/"),
        username=args.username,
        password=args.password,
        auto_login=args.auto_login,
        api_key=args.api_key,
        # a session given: no simulated user logs in (Langflow allows 5 logins a minute per address)
        sessions=[args.access_token] if args.access_token else base.sessions,
        logins=0 if args.access_token else base.logins,
        flows=args.flows.split(","),
        amqp_url=args.amqp_url,
        queue=args.queue,
    )
    samples = locust(s, out, "ours", ["IdeUser", "RuntimeUser"])
    result = {
        "ours": report.summarise(report.Samples.load(samples), label="ours", load=load_description(s, args.scale))
    }
    if args.amqp_url and args.queue:
        q = replace(s, queue_users=s.runtime_users, ide_users=0, runtime_users=0, duration=args.queue_duration)
        qs = locust(q, out, "queue", ["QueueUser"])
        result["queue"] = report.summarise(report.Samples.load(qs), label="queue", load=load_description(q, args.scale))
    return result


def run_local(args: argparse.Namespace, base: Settings, out: Path) -> dict[str, Any]:
    from loadtest.local import installation
    from tests.harness.servers import wait_for

    t0 = time.monotonic()
    with installation(profile=args.profile, baseline=not args.no_baseline, logs=out / "load-logs") as inst:
        print(f"==> local installation healthy in {time.monotonic() - t0:.0f}s {inst.start_seconds}", flush=True)
        result: dict[str, Any] = {"start_seconds": inst.start_seconds}
        for t in (inst.ours, inst.baseline):
            if t is None:
                continue
            s = replace(
                base,
                ide_host=t.ide.base_url,
                runtime_host=t.runtime.base_url,
                flows=t.flows,
                **t.credentials(),
            )
            harness_token = t.ide.access_token()  # before the load: the login limiter allows 5 a minute
            pids: dict[str, int] = {}
            if args.py_spy and profile.available():
                pids = {f"{t.label}-ide": t.ide.popen.pid}
                if t.runtime is not t.ide:
                    pids[f"{t.label}-runtime"] = t.runtime.popen.pid
            samples = locust(s, out, t.label, ["IdeUser", "RuntimeUser"], pids)
            result[t.label] = report.summarise(
                report.Samples.load(samples), label=t.label, load=load_description(s, args.scale)
            )
            result[t.label]["flows"] = t.flows
            result[t.label]["cleaned_up_flows"] = cleanup(t.ide.base_url, harness_token)
            for label in pids:
                result.setdefault("profile", {})[label] = profile.summarise(out / f"profile-{label}.txt")
        if inst.ours is not None and inst.ours.amqp_url and inst.ours.queue and args.queue_duration > 0:
            from loadtest.queue import QueueClient

            t = inst.ours
            wait_for(lambda: QueueClient(t.amqp_url, t.queue).close() is None, 120, f"job queue {t.queue}")
            q = replace(
                base,
                ide_users=0,
                runtime_users=0,
                queue_users=base.runtime_users,
                duration=args.queue_duration,
                amqp_url=t.amqp_url,
                queue=t.queue,
                flows=t.flows,
            )
            qs = locust(q, out, "queue", ["QueueUser"])
            result["queue"] = report.summarise(
                report.Samples.load(qs), label="queue", load=load_description(q, args.scale)
            )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="", help="IDE base URL of an installation (default: start a local one)")
    p.add_argument("--runtime-host", default="", help="runtime base URL (default: --host)")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load per system under test")
    p.add_argument("--queue-duration", type=float, default=None, help="seconds of the queued scenario (0: skip)")
    p.add_argument("--scale", type=float, default=100.0, help="divide the seed's load by this (default 100)")
    p.add_argument("--rate-per-user", type=float, default=1.0, help="flows/s each runtime user aims at")
    p.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"))
    p.add_argument("--queue-batch", type=int, default=1, help="jobs a queue user publishes at once")
    p.add_argument("--profile", default="dev", help="values/ profile of the local installation")
    p.add_argument("--no-baseline", action="store_true", help="local: skip Langflow's defaults")
    p.add_argument("--username", default=os.environ.get("LANGFLOW_SUPERUSER", "langflow"))
    p.add_argument("--password", default=os.environ.get("LANGFLOW_SUPERUSER_PASSWORD", ""))
    p.add_argument("--auto-login", action="store_true", help="the installation has LANGFLOW_AUTO_LOGIN=true")
    p.add_argument("--api-key", default=os.environ.get("LANGFLOW_API_KEY", ""))
    p.add_argument(
        "--access-token",
        default=os.environ.get("LANGFLOW_ACCESS_TOKEN", ""),
        help="remote: a logged-in session's bearer token the IDE users share (then none logs in)",
    )
    p.add_argument("--flows", default="echo", help="remote: comma-separated flow endpoint names that need no LLM")
    p.add_argument("--amqp-url", default=os.environ.get("LOADTEST_AMQP_URL", ""), help="remote: broker for queued runs")
    p.add_argument("--queue", default="langflow.flow-runs", help="remote: job queue")
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    p.add_argument(
        "--py-spy",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="local: sample the Langflow processes with py-spy during the load (when py-spy is installed)",
    )
    args = p.parse_args(argv)
    if args.queue_duration is None:
        args.queue_duration = max(10.0, args.duration / 2)
    args.out.mkdir(parents=True, exist_ok=True)
    base = load_settings(args)
    t0 = time.monotonic()
    load_before = os.getloadavg()
    result = run_remote(args, base, args.out) if args.host else run_local(args, base, args.out)
    ours = result["ours"]
    baseline = result.get("baseline")
    doc = {
        **{k: ours[k] for k in ("runtime_p95_ms", "ide_p95_ms", "flows_per_s", "error_rate", "requests", "users")},
        "baseline": {
            k: baseline[k] for k in ("runtime_p95_ms", "ide_p95_ms", "flows_per_s", "error_rate", "requests", "users")
        }
        if baseline
        else None,
        "queue": result.get("queue"),
        "targets": [
            {"target": t, "ours": o, "baseline": b, "met": m} for t, o, b, m in report.verdicts(ours, baseline)
        ],
        "details": {"ours": ours, "baseline": baseline},
        "start_seconds": result.get("start_seconds"),
        "profile": result.get("profile"),
        "wall_seconds": round(time.monotonic() - t0, 1),
        # context for the numbers: a shared machine's load changes latencies more than anything else
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "host": args.host or "local",
    }
    (args.out / "load.json").write_text(json.dumps(doc, indent=2) + "\n")
    systems = {
        k: report.Samples.load(args.out / f"load-{k}.samples.jsonl")
        for k in ("ours", "baseline", "queue")
        if (args.out / f"load-{k}.samples.jsonl").exists() and k in result
    }
    report.plot(systems, args.out)
    print(report.table(ours, baseline))
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after")
    if result.get("queue"):
        q = result["queue"]
        print(
            f"queued runs: p95 {q['queue_p95_ms']} ms end to end, {q['flows_per_s']} flows/s, "
            f"error rate {q['error_rate']}, {q['requests']} jobs"
        )
    missed = [t for t, _, _, m in report.verdicts(ours, baseline) if m is False]
    if missed and result.get("profile"):
        print("where the time goes (py-spy, share of CPU samples holding the GIL, inclusive):")
        for label, summary in result["profile"].items():
            top = ", ".join(f"{f} {s * 100:.0f}%" for f, s in profile.interesting(summary, 5))
            print(f"  {label} ({summary['samples']} samples): {top}")
    print(f"report: {args.out / 'load.json'} (+ load-*.html, load-latency.png, load-throughput.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
