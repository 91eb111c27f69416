"""python -m loadtest.starts: many fresh starts of the IDE and runtime pods on the real node, and where they go.

The dev profile runs on the local cluster's real node (kubelet + containerd; `make cluster-up`), installed (or
upgraded to the chart as it is) in loadtest.capacity's namespace and release. Then:
- `--ide N` times: the IDE Deployment is restarted (`kubectl rollout restart`; the old pod is gone before the
  next step); for the new pod, the seconds from its creation to Ready, where they went (the pod's own status:
  scheduled, each init container done, each container started, Ready), and the first GET /api/v1/all a logged-in
  user sends to that pod (its own IP) against `--warm` more;
- `--runtime N` times: the runtime's first pod is deleted and the StatefulSet's replacement timed the same way.
Figures (issue 18): p50/p95 of creation -> Ready per pod kind (target <= 30 s), the median of each phase, and the
p95 of the first catalogue requests over the p95 of the warm ones (target <= 1.5). Bounded: N <= 50 each, every
wait has a timeout, and the run stops by itself.

Writes reports/starts.json (read by loadtest.page into load.json and load.html).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path
from typing import Any

from loadtest import report
from loadtest.capacity import NAMESPACE, RELEASE, ide_pod_start, runtime_start

ROOT = Path(__file__).resolve().parents[1]
READY_TARGET_S = 30.0
FIRST_OVER_WARM_TARGET = 1.5
MAX_STARTS = 50


def ide_start(cluster: Any, namespace: str, credentials: tuple[str, str], warm: int) -> dict[str, Any]:
    """One restart of the IDE Deployment: Ready seconds, phases, first and warm catalogue requests (ms)."""
    from tests.harness import realplatform as rp

    deployment = rp.Release(cluster, RELEASE, namespace).ide_deployment()
    pod, start = ide_pod_start(cluster, namespace, deployment, credentials, warm, timeout=60)
    return {"pod": pod["metadata"]["name"], **start}


def phase_medians(starts: list[dict[str, Any]]) -> dict[str, float]:
    """The median second of each phase over the starts that have it, in the order they happen."""
    keys = {k for s in starts for k in s["phases_s"]}
    medians = {k: statistics.median(s["phases_s"][k] for s in starts if k in s["phases_s"]) for k in keys}
    return {k: round(v, 1) for k, v in sorted(medians.items(), key=lambda kv: kv[1])}


def summarise(ide: list[dict[str, Any]], runtime: list[dict[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {"ready_target_s": READY_TARGET_S, "first_over_warm_target": FIRST_OVER_WARM_TARGET}
    for label, starts in (("ide", ide), ("runtime", runtime)):
        ready = [s["ready_s"] for s in starts]
        doc[label] = {
            "starts": len(starts),
            "ready_s_p50": report.percentile(ready, 50),
            "ready_s_p95": report.percentile(ready, 95),
            "ready_s_max": max(ready, default=None),
            "phases_s_median": phase_medians(starts) if starts else {},
            "runs": starts,
        }
    if ide:
        first = report.percentile([s["first_ms"] for s in ide], 95)
        warm = report.percentile([w for s in ide for w in s["warm_ms"]], 95)
        ratio = round(first / warm, 2) if first and warm else None
        doc["ide"]["catalogue"] = {"first_ms_p95": first, "warm_ms_p95": warm, "first_over_warm_p95": ratio}
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.starts", description=__doc__.split("\n\n")[0])
    p.add_argument("--ide", type=int, default=20, help=f"fresh IDE pods (0..{MAX_STARTS})")
    p.add_argument("--runtime", type=int, default=10, help=f"fresh runtime pods (0..{MAX_STARTS})")
    p.add_argument("--warm", type=int, default=5, help="warm catalogue requests after the first, per IDE start")
    p.add_argument("--namespace", default=NAMESPACE)
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    for name in ("ide", "runtime"):
        if not 0 <= getattr(args, name) <= MAX_STARTS:
            p.error(f"--{name} must be between 0 and {MAX_STARTS}, got {getattr(args, name)}")
    if args.warm < 1:
        p.error(f"--warm must be at least 1, got {args.warm}")
    from tests.harness import realplatform as rp
    from tests.harness.cluster import DEFAULT_DIR, LocalCluster

    args.out.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(DEFAULT_DIR, progress=lambda m: print(f"cluster: {m}", flush=True), real_node=True).up()
    cluster.install_crds()
    cluster.create_namespace(args.namespace, restricted=True)
    rp.install(cluster, RELEASE, args.namespace, "dev", timeout="15m")  # the chart as it is now (upgrade --install)
    credentials = rp.Release(cluster, RELEASE, args.namespace).login()
    load_before = os.getloadavg()
    ide: list[dict[str, Any]] = []
    for i in range(args.ide):
        ide.append(ide_start(cluster, args.namespace, credentials, args.warm))
        s = ide[-1]
        print(f"IDE start {i + 1}/{args.ide}: Ready {s['ready_s']} s, first /api/v1/all {s['first_ms']} ms "
              f"(warm median {statistics.median(s['warm_ms'])} ms); {s['phases_s']}", flush=True)  # fmt: skip
    runtime: list[dict[str, Any]] = []
    for i in range(args.runtime):
        ready, phases = runtime_start(cluster, args.namespace)
        runtime.append({"ready_s": ready, "phases_s": phases})
        print(f"runtime start {i + 1}/{args.runtime}: Ready {ready} s; {phases}", flush=True)
    doc = summarise(ide, runtime)
    doc["machine"] = {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()}
    doc["where"] = "local cluster, real node (kubelet + containerd), dev profile"
    (args.out / "starts.json").write_text(json.dumps(doc, indent=2) + "\n")
    for label in ("ide", "runtime"):
        d = doc[label]
        print(f"{label}: {d['starts']} starts, Ready p50 {d['ready_s_p50']} s, p95 {d['ready_s_p95']} s "
              f"(target <= {READY_TARGET_S:.0f} s); phases (median s): {d['phases_s_median']}")  # fmt: skip
    if ide:
        c = doc["ide"]["catalogue"]
        print(f"first /api/v1/all on a fresh pod: p95 {c['first_ms_p95']} ms against warm p95 {c['warm_ms_p95']} ms "
              f"-> {c['first_over_warm_p95']}x (target <= {FIRST_OVER_WARM_TARGET})")  # fmt: skip
    print(f"report: {args.out / 'starts.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
