"""python -m loadtest.throughput: flows/s per runtime pod against its execution slots, on real pods.

The dev profile runs on the local cluster's real node (kubelet + containerd; `make cluster-up`) with one runtime
pod (KEDA off, so nothing else scales) and the runtime's flows: the built-in `echo` (ChatInput -> ChatOutput) and
`text-chain` (loadtest/flows/text-chain.json, added through `runtime.flows.extra`: ChatInput -> Prompt Template
-> text operations -> ChatOutput, real string work and no external API). For each slot count of `--slots`
(`runtime.worker.prefetch`: jobs the pod's worker takes from the broker at once and runs on the pod's Langflow
concurrently), the release is upgraded, the new pod's Langflow warmed with a few jobs of each flow, and then
`--jobs` jobs of each flow are published at once to the runtime's queue (loadtest/queue.py, the worker's job
format); throughput is completed jobs over the seconds from the first publish to the last result, and the pod's
cgroup gives the cores it used. The same flows are then run synchronously on the IDE (`POST /api/v1/run/<flow>`,
x-api-key) by as many concurrent clients as slots, the comparison the issue asks for.

The pod count the seed's 100 flows/s needs is 100 over the best flows/s of one pod on the flow that does work
(the slower one), rounded up: a conservative figure for this kind of machine (2 cores shared by every process of
the platform, the runtime's Langflow limited to the dev profile's 1 CPU).

Writes reports/throughput.json (read by loadtest.page into load.json and load.html).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from loadtest import report
from loadtest.capacity import NAMESPACE, RELEASE, CpuSampler, System, cores_between
from loadtest.queue import JobResult, burst

ROOT = Path(__file__).resolve().parents[1]
WORK_FLOW = ROOT / "loadtest" / "flows" / "text-chain.json"
SEED_FLOWS_PER_S = 100.0
BUILT_IN_FLOW = "echo"


def work_flow_name() -> str:
    """The endpoint name of the flow that does work, from its own file."""
    return str(json.loads(WORK_FLOW.read_text())["endpoint_name"])


def release_values(slots: int) -> dict[str, Any]:
    """One runtime pod, KEDA off, `slots` execution slots, the work flow added to the built-in ones."""
    return {
        "runtime.keda.enabled": False,
        "runtime.replicaCount": 1,
        "runtime.worker.prefetch": slots,
        "runtime.flows.extra": {WORK_FLOW.name: WORK_FLOW.read_text()},
    }


def amqp_url(release: Any) -> str:
    """The worker's broker URL with this machine's route to the broker (the Service's ClusterIP)."""
    b = release.broker()
    env = release.container_env(release.runtime(), "worker")
    vhost = urllib.parse.urlsplit(str(env.get("LF_BROKER_URL", "")).replace("$(", "").replace(")", "")).path[1:]
    user, password = (urllib.parse.quote(b[k], safe="") for k in ("username", "password"))
    return f"amqp://{user}:{password}@{b['host']}:{b['port']}/{vhost or '%2F'}"


def figures(
    kind: str, flow: str, slots: int, results: list[tuple[float, float | None, bool]], cpu: System
) -> dict[str, Any]:
    """(sent, latency_s or None, ok) per job -> flows/s over first send .. last completion, latencies, cores."""
    done = [(s, lat) for s, lat, ok in results if ok and lat is not None]
    t0 = min(s for s, _lat, _ok in results)
    t1 = max((s + lat for s, lat in done), default=t0)
    span = t1 - t0
    lat_ms = [lat * 1000 for _s, lat in done]
    return {
        "kind": kind,
        "flow": flow,
        "slots": slots,
        "jobs": len(results),
        "ok": len(done),
        "errors": len(results) - len(done),
        "span_s": round(span, 2),
        "flows_per_s": round(len(done) / span, 2) if span > 0 else None,
        "p50_ms": report.percentile(lat_ms, 50),
        "p95_ms": report.percentile(lat_ms, 95),
        "cores_used": cores_between(cpu.cpu_samples, t0, t1),
    }


def runtime_burst(url: str, queue: str, flow: str, jobs: int, slots: int, pod: System) -> dict[str, Any]:
    """`jobs` jobs of `flow` published at once; each result's latency is publish -> result received."""
    with CpuSampler([pod]):
        results: list[JobResult] = burst(url, queue, flow, jobs, timeout=max(120.0, jobs * 10.0))
    out = figures("runtime", flow, slots, [(r.sent, r.latency_s, r.status == "ok") for r in results], pod)
    run_ms = [r.duration_ms for r in results if r.status == "ok" and r.duration_ms is not None]
    out["run_ms_p50"] = round(statistics.median(run_ms), 1) if run_ms else None
    out["errors_seen"] = sorted({str(r.error)[:200] for r in results if r.status != "ok"})[:3]
    return out


def ide_api_key(url: str, user: str, password: str) -> str:
    """A key of the superuser (the owner of the runtime's loaded flows) for x-api-key."""
    r = requests.post(f"{url}/api/v1/login", data={"username": user, "password": password}, timeout=60)
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    k = requests.post(f"{url}/api/v1/api_key/", json={"name": "loadtest-throughput"}, headers=headers, timeout=60)
    k.raise_for_status()
    return str(k.json()["api_key"])


def ide_sync(url: str, api_key: str, flow: str, jobs: int, clients: int, pod: System) -> dict[str, Any]:
    """`jobs` synchronous runs of `flow` on the IDE by `clients` concurrent clients (bounded per request)."""
    body = {"input_type": "chat", "output_type": "chat"}

    def one(i: int) -> tuple[float, float | None, bool]:
        sent = time.time()
        try:
            r = requests.post(f"{url}/api/v1/run/{flow}", json={**body, "input_value": f"sync {i}"},
                              headers={"x-api-key": api_key}, timeout=120)  # fmt: skip
        except requests.RequestException:
            return sent, None, False
        return sent, time.time() - sent, r.status_code == 200

    with CpuSampler([pod]), ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(jobs)))
    return figures("ide-sync", flow, clients, results, pod)


def wait_runtime_ready(release: Any, slots: int, timeout: float = 900) -> dict[str, Any]:
    """The runtime's one pod, Ready, running with `slots` slots (its worker's env says so)."""
    from tests.harness.servers import wait_for

    def ready() -> dict[str, Any] | None:
        pods = release.pods_of(release.runtime())
        if len(pods) != 1:
            return None
        (p,) = pods
        conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
        worker = next(c for c in p["spec"]["containers"] if c["name"] == "worker")
        env = {e["name"]: e.get("value") for e in worker.get("env", [])}
        return p if conds.get("Ready") == "True" and env.get("WORKER_PREFETCH") == str(slots) else None

    return wait_for(ready, timeout, f"one Ready runtime pod with {slots} slot(s)", interval=3)


def headline(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Best flows/s of one runtime pod per flow, and the pods the seed's 100 flows/s needs on the work flow."""
    best: dict[str, float] = {}
    for r in rows:
        if r["kind"] == "runtime" and r["flows_per_s"] and not r["errors"]:
            best[r["flow"]] = max(best.get(r["flow"], 0.0), r["flows_per_s"])
    work = best.get(work_flow_name())
    ide: dict[str, float] = {}
    for r in rows:
        if r["kind"] == "ide-sync" and r["flows_per_s"] and not r["errors"]:
            ide[r["flow"]] = max(ide.get(r["flow"], 0.0), r["flows_per_s"])
    return {
        "runtime_flows_per_s_per_pod": work,
        "runtime_flows_per_s_per_pod_by_flow": best,
        "ide_sync_flows_per_s_by_flow": ide,
        "seed_flows_per_s": SEED_FLOWS_PER_S,
        "runtime_pods_for_seed": math.ceil(SEED_FLOWS_PER_S / work) if work else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--slots", default="1,2,3", help="execution slots per runtime pod (comma-separated)")
    p.add_argument("--jobs", type=int, default=60, help="jobs per flow and slot count (bounded: 1..1000)")
    p.add_argument("--warm", type=int, default=3, help="jobs per flow on a new pod before it is measured")
    p.add_argument("--namespace", default=NAMESPACE)
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    slots = [int(x) for x in args.slots.split(",") if x.strip()]
    if not slots or min(slots) < 1:
        p.error(f"--slots must be positive integers, got {args.slots!r}")
    if not 1 <= args.jobs <= 1000:
        p.error(f"--jobs must be within 1..1000, got {args.jobs}")
    from tests.harness import realplatform as rp
    from tests.harness.cluster import DEFAULT_DIR, LocalCluster

    args.out.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(DEFAULT_DIR, progress=lambda m: print(f"cluster: {m}", flush=True), real_node=True).up()
    cluster.install_crds()
    cluster.create_namespace(args.namespace, restricted=True)
    flows = [BUILT_IN_FLOW, work_flow_name()]
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    release = rp.Release(cluster, RELEASE, args.namespace)
    for n in slots:
        print(f"throughput: {n} slot(s): upgrading the release", flush=True)
        rp.install(cluster, RELEASE, args.namespace, "dev", timeout="15m", set_values=release_values(n))
        pod = System("runtime", "", wait_runtime_ready(release, n))
        url, queue = amqp_url(release), release.broker()["queue"]
        for flow in flows:
            warm = burst(url, queue, flow, args.warm, timeout=300)
            bad = [r for r in warm if r.status != "ok"]
            if bad:
                raise SystemExit(f"throughput: flow {flow!r} does not run on the runtime: {bad[0].error}")
            row = runtime_burst(url, queue, flow, args.jobs, n, pod)
            print(f"  runtime {flow}: {row['flows_per_s']} flows/s, p95 {row['p95_ms']} ms, {row['errors']} "
                  f"errors, {row['cores_used']} cores", flush=True)  # fmt: skip
            rows.append(row)
    user, password = release.login()
    ide_url = release.ide_url()
    key = ide_api_key(ide_url, user, password)
    ide_pod = System("ide", ide_url, release.pods_of(release.ide_deployment())[0])
    for n in slots:
        for flow in flows:
            ide_sync(ide_url, key, flow, args.warm, n, ide_pod)
            row = ide_sync(ide_url, key, flow, args.jobs, n, ide_pod)
            print(f"  ide sync {flow} x{n}: {row['flows_per_s']} flows/s, p95 {row['p95_ms']} ms, "
                  f"{row['errors']} errors", flush=True)  # fmt: skip
            rows.append(row)
    doc = {
        **headline(rows),
        "rows": rows,
        "jobs_per_burst": args.jobs,
        "runtime_resources": pod.pod["spec"]["containers"][0].get("resources"),
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "where": "local cluster, real node (kubelet + containerd); one runtime pod, KEDA off; CPU from its cgroup",
    }
    (args.out / "throughput.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(f"runtime: {doc['runtime_flows_per_s_per_pod_by_flow']} flows/s per pod (best over slots); the seed's "
          f"{SEED_FLOWS_PER_S:.0f} flows/s need {doc['runtime_pods_for_seed']} pods; IDE sync "
          f"{doc['ide_sync_flows_per_s_by_flow']}")  # fmt: skip
    print(f"report: {args.out / 'throughput.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
