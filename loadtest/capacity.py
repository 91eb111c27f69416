"""python -m loadtest.capacity: IDE users per core at p95 < 100 ms, ours against bare Langflow, on real pods.

Both systems run as pods on the local cluster's real node (kubelet + containerd; `make cluster-up`), each in the
cgroup its resources give it:
- ours: the dev profile's IDE Deployment, installed with the umbrella chart (its CPU limit, warm-up, PostgreSQL);
- baseline: bare Langflow as the official langflow-ide chart deploys it by default (loadtest/baseline.yaml:
  the backend image, SQLite in an emptyDir, requests 0.5 CPU / 1 Gi and no limits).
Each IDE pod is restarted first (creation -> Ready, and its first catalogue request against warm ones). Then the
same Locust step shape goes to each in turn: IDE users (loadtest/locustfile.py IdeUser) rise through `--steps`
(default 10, 20, 30, 40, 60, 80), `--step-seconds` each, after a warm-in at the first step's users that is not
counted (both systems' code paths warm, so the curve compares capacity, not cold starts), and the run stops by
itself. Per step: the p95 of the IDE requests sent after the step settled, the errors, and the CPU the pod's
cgroup used (cpuacct, read on this machine). The capacity of a system is the largest step whose p95 stayed under
the target with no errors; users per core divides it by the cores the pod may use (its CPU limit, else the node's
CPUs) and, as a second figure, by the cores it used at that step. The seed's 1000 IDE users are then scaled to
the replicas they need. Finally a runtime pod is deleted and the seconds until its replacement is Ready recorded.

Writes reports/capacity.json, reports/capacity-<system>.samples.jsonl and the Locust CSV/HTML per system.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import statistics
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from loadtest import report, run
from loadtest.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BASELINE_MANIFEST = ROOT / "loadtest" / "baseline.yaml"
TARGET_P95_MS = 100.0
SEED_IDE_USERS = 1000
NAMESPACE = "loadtest"
RELEASE = "lf"


@dataclass
class System:
    """One system under test: its IDE base URL, how to log in, and the pod whose cgroup is measured."""

    label: str
    url: str
    pod: dict[str, Any]
    username: str = ""
    password: str = ""
    auto_login: bool = False
    cpu_limit: float | None = None
    deployment: dict[str, Any] = field(default_factory=dict)
    ready_s: float | None = None
    phases: dict[str, float] = field(default_factory=dict)  # rp.start_phases of its fresh start
    catalogue: dict[str, Any] = field(default_factory=dict)
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)


def cpu_limit(pod: dict[str, Any], container: str = "langflow") -> float | None:
    """The container's CPU limit in cores, None when it has none."""
    from kubernetes.utils import parse_quantity

    for c in pod["spec"]["containers"]:
        if c["name"] == container:
            lim = (c.get("resources") or {}).get("limits", {}).get("cpu")
            return float(parse_quantity(lim)) if lim else None
    raise KeyError(f"pod {pod['metadata']['name']} has no container {container}")


def pod_cpu_path(uid: str) -> Path:
    """The pod's CPU accounting file: cgroup v1 cpuacct.usage (ns) or v2 cpu.stat, kubelet's cgroupfs layout."""
    root = Path("/sys/fs/cgroup")
    for pattern in (f"cpuacct/kubepods*/**/pod{uid}/cpuacct.usage", f"kubepods*/**/pod{uid}/cpu.stat"):
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
    raise FileNotFoundError(f"no cgroup for pod uid {uid} under {root} (is the pod on this machine's real node?)")


def read_cpu_seconds(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    fields = dict(line.split() for line in text.splitlines())
    return int(fields["usage_usec"]) / 1e6


class CpuSampler:
    """Samples each system's pod cgroup once a second while the load runs (bounded by stop())."""

    def __init__(self, systems: list[System]) -> None:
        self.paths = {s.label: pod_cpu_path(s.pod["metadata"]["uid"]) for s in systems}
        self.systems = {s.label: s for s in systems}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            for label, path in self.paths.items():
                self.systems[label].cpu_samples.append((now, read_cpu_seconds(path)))
            self._stop.wait(1.0)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def cores_between(samples: list[tuple[float, float]], t0: float, t1: float) -> float | None:
    """Average cores used between t0 and t1 from cumulative CPU-seconds samples."""
    inside = [(t, c) for t, c in samples if t0 <= t <= t1]
    if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
        return None
    return round((inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]), 3)


def step_figures(
    samples: report.Samples, system: System, steps: list[int], step_s: float, settle_s: float, warm_s: float = 0
) -> list[dict[str, Any]]:
    """Per step: users, IDE requests and errors, p50/p95 of those sent after the step settled, cores used.
    The first `warm_s` seconds of the run (the warm-in) are left out."""
    if not samples.users:
        raise RuntimeError(f"{system.label}: Locust recorded no user counts")
    start = samples.users[0][0] + warm_s
    ide = samples.of("ide:")
    out = []
    for i, users in enumerate(steps):
        t0, t1 = start + i * step_s, start + (i + 1) * step_s
        window = [r for r in ide if t0 + settle_s <= r["t"] < t1]
        ms = [r["ms"] for r in window if r["ok"]]
        out.append(
            {
                "users": users,
                "requests": len(window),
                "errors": sum(1 for r in window if not r["ok"]),
                "p50_ms": report.percentile(ms, 50),
                "p95_ms": report.percentile(ms, 95),
                "rps": round(len(window) / (t1 - t0 - settle_s), 2),
                "cores_used": cores_between(system.cpu_samples, t0 + settle_s, t1),
            }
        )
    return out


def capacity(figures: list[dict[str, Any]], target_ms: float = TARGET_P95_MS) -> dict[str, Any] | None:
    """The largest step before the first one whose p95 passed the target or that had errors."""
    best = None
    for f in figures:
        if f["errors"] or f["p95_ms"] is None or f["p95_ms"] >= target_ms:
            break
        best = f
    return best


def summarise(system: System, figures: list[dict[str, Any]], node_cpus: float) -> dict[str, Any]:
    best = capacity(figures)
    cores = system.cpu_limit or node_cpus
    users = best["users"] if best else 0
    used = best["cores_used"] if best else None
    return {
        "label": system.label,
        "pod": system.pod["metadata"]["name"],
        "cpu_limit": system.cpu_limit,
        "cores_counted": cores,
        "users_p95_100ms": users,
        "users_per_core_p95_100ms": round(users / cores, 1),
        "users_per_core_used_p95_100ms": round(users / used, 1) if used else None,
        "ready_s": system.ready_s,
        "start_phases_s": system.phases,
        "catalogue_after_ready": system.catalogue,
        "steps": figures,
    }


def seed_replicas(ours: dict[str, Any], hpa_max: int) -> dict[str, Any]:
    per_pod = ours["users_p95_100ms"]
    need = math.ceil(SEED_IDE_USERS / per_pod) if per_pod else None
    return {
        "seed_ide_users": SEED_IDE_USERS,
        "users_per_pod": per_pod,
        "replicas_needed": need,
        "hpa_max_replicas": hpa_max,
        "users_at_hpa_max": per_pod * hpa_max,
        "seed_fits_hpa_max": need is not None and need <= hpa_max,
    }


# ---------------------------------------------------------------------------------------- the two systems
def baseline_secret(cluster: Any, namespace: str) -> str:
    """The baseline's superuser password and secret key (Secret langflow-baseline, made once, then reused)."""
    from tests.harness import realplatform as rp

    ref = {"secretKeyRef": {"name": "langflow-baseline", "key": "superuser-password"}}
    got = cluster.kubectl("get", "secret", "langflow-baseline", "-n", namespace, check=False)
    if got.returncode != 0:
        data = {"superuser-password": secrets.token_urlsafe(18), "secret-key": secrets.token_urlsafe(32)}
        meta = {"name": "langflow-baseline", "namespace": namespace}
        cluster.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data}])
    return rp.secret_value(cluster, namespace, ref)


def install(cluster: Any, namespace: str, timeout: str = "15m") -> dict[str, System]:
    """Ours (the dev profile, reused when installed) and the baseline Deployment, both Ready on the real node."""
    from tests.harness import realplatform as rp

    cluster.install_crds()
    cluster.create_namespace(namespace, restricted=True)
    rp.install(cluster, RELEASE, namespace, "dev", timeout=timeout)
    release = rp.Release(cluster, RELEASE, namespace)
    user, password = release.login()
    ide = release.ide_deployment()
    ide_pod = release.pods_of(ide)[0]
    ours = System("ours", release.ide_url(), ide_pod, user, password, cpu_limit=cpu_limit(ide_pod), deployment=ide)
    docs = [d for d in yaml.safe_load_all(BASELINE_MANIFEST.read_text()) if d]
    for d in docs:
        d["metadata"]["namespace"] = namespace
    password = baseline_secret(cluster, namespace)
    cluster.apply(docs)
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/langflow-baseline", "--timeout=600s", timeout=660)
    svc = next(d for d in docs if d["kind"] == "Service")
    pods = rp.pods(cluster, namespace, label_selector="app.kubernetes.io/name=langflow-baseline")
    name = svc["metadata"]["name"]
    live_svc = json.loads(cluster.kubectl("get", "service", name, "-n", namespace, "-o", "json").stdout)
    url = f"http://{live_svc['spec']['clusterIP']}:{svc['spec']['ports'][0]['port']}"
    rp.wait_healthy(url, timeout=300)
    rp.wait_healthy(ours.url, timeout=300)
    live = json.loads(cluster.kubectl("get", "deployment", "langflow-baseline", "-n", namespace, "-o", "json").stdout)
    baseline = System("baseline", url, pods[0], "admin", password, cpu_limit=cpu_limit(pods[0]), deployment=live)
    return {"ours": ours, "baseline": baseline}


def ide_pod_start(
    cluster: Any,
    namespace: str,
    deployment: dict[str, Any],
    credentials: tuple[str, str],
    warm: int,
    timeout: float = 120,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restart an IDE Deployment and time its new pod: the pod, and its creation -> Ready seconds, the start's
    phases (rp.start_phases), then the first catalogue request a logged-in user sends to that pod (its own IP,
    not the Service) and `warm` more (ms)."""
    from tests.harness import realplatform as rp

    pod = rp.restart_deployment(cluster, namespace, deployment)
    first, warm_ms = rp.first_and_warm_ms(rp.pod_url(pod), *credentials, "/api/v1/all", warm=warm, timeout=timeout)
    start = {"ready_s": round(rp.ready_seconds(pod), 1), "phases_s": rp.start_phases(pod)}
    return pod, {**start, "first_ms": first, "warm_ms": warm_ms}


def fresh_start(cluster: Any, namespace: str, system: System) -> None:
    """Restart the system's IDE pod and record its start and catalogue timings (ide_pod_start)."""
    credentials = (system.username, system.password)
    pod, start = ide_pod_start(cluster, namespace, system.deployment, credentials, warm=5)
    system.pod, system.ready_s, system.phases = pod, start["ready_s"], start["phases_s"]
    first, warm = start["first_ms"], start["warm_ms"]
    system.catalogue = {
        "first_ms": first,
        "warm_ms": warm,
        "first_over_warm": round(first / statistics.median(warm), 2),
    }


def runtime_start(cluster: Any, namespace: str) -> tuple[float, dict[str, float]]:
    """Delete the runtime's first pod; seconds from the new pod's creation to Ready (the StatefulSet remakes it),
    and where they went (rp.start_phases)."""
    from tests.harness import realplatform as rp

    release = rp.Release(cluster, RELEASE, namespace)
    name = sorted(release.runtime_pods())[0]
    old_uid = next(p["metadata"]["uid"] for p in release.pods_of(release.runtime()) if p["metadata"]["name"] == name)
    cluster.kubectl("delete", "pod", name, "-n", namespace, "--wait=true", timeout=300)

    def ready() -> dict[str, Any] | None:
        for p in release.pods_of(release.runtime()):
            conds = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
            if p["metadata"]["name"] == name and p["metadata"]["uid"] != old_uid and conds.get("Ready") == "True":
                return p
        return None

    pod = rp.wait_for(ready, 600, f"runtime pod {name} Ready again", interval=2)
    return round(rp.ready_seconds(pod), 1), rp.start_phases(pod)


def measure(
    systems: dict[str, System],
    steps: list[int],
    step_s: float,
    settle_s: float,
    out: Path,
    think: tuple[float, float],
    logins: int = 0,
) -> dict[str, Any]:
    """The step shape against each system in turn (Locust, IdeUser); per-step figures and the capacity.
    `logins`: users that log in; the others reuse the harness's session (Langflow allows 5 logins a minute per
    address, and a login is not what the curve measures)."""
    node_cpus = float(os.cpu_count() or 1)
    results: dict[str, Any] = {}
    base = Settings(
        ide_users=max(steps),
        think_min=think[0],
        think_max=think[1],
        duration=(len(steps) + 1) * step_s,
        shape="steps",
        steps=[steps[0], *steps],  # the first step twice: the warm-in, then the counted one
        step_seconds=step_s,
        logins=logins,
    )
    for label, system in systems.items():
        s = replace(
            base,
            ide_host=system.url,
            username=system.username,
            password=system.password,
            auto_login=system.auto_login,
        )
        harness_token = run.token(system.url, s)
        s = replace(s, sessions=[harness_token])
        with CpuSampler([system]):
            samples_path = run.locust(s, out, f"capacity-{label}", ["IdeUser"])
        run.cleanup(system.url, harness_token)
        figures = step_figures(report.Samples.load(samples_path), system, steps, step_s, settle_s, warm_s=step_s)
        results[label] = summarise(system, figures, node_cpus)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.capacity", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", default="10,20,30,40,60,80", help="IDE users per step (comma-separated, rising)")
    p.add_argument("--step-seconds", type=float, default=30.0)
    p.add_argument("--settle-seconds", type=float, default=10.0, help="left out at the start of each step")
    p.add_argument("--think", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX"))
    p.add_argument("--namespace", default=NAMESPACE)
    p.add_argument("--out", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    steps = [int(x) for x in args.steps.split(",") if x.strip()]
    if not steps or steps != sorted(steps) or steps[0] < 1:
        p.error(f"--steps must be rising positive integers, got {args.steps!r}")
    from tests.harness.cluster import DEFAULT_DIR, LocalCluster
    from tests.harness.helm import render_profile

    args.out.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(DEFAULT_DIR, progress=lambda m: print(f"cluster: {m}", flush=True), real_node=True).up()
    systems = install(cluster, args.namespace)
    for system in systems.values():  # one at a time: a start's CPU is part of what is measured
        fresh_start(cluster, args.namespace, system)
    runtime_ready, runtime_phases = runtime_start(cluster, args.namespace)
    load_before = os.getloadavg()
    results = measure(systems, steps, args.step_seconds, args.settle_seconds, args.out, tuple(args.think))
    hpa = render_profile("prod").get("HorizontalPodAutoscaler", f"{RELEASE}-ide")
    doc = {
        "target_p95_ms": TARGET_P95_MS,
        "step_seconds": args.step_seconds,
        "settle_seconds": args.settle_seconds,
        "think_s": list(args.think),
        "ours": results["ours"],
        "baseline": results["baseline"],
        "seed": seed_replicas(results["ours"], int(hpa["spec"]["maxReplicas"])),
        "ide_ready_s": systems["ours"].ready_s,
        "runtime_ready_s": runtime_ready,
        "runtime_start_phases_s": runtime_phases,
        "ide_start_phases_s": systems["ours"].phases,
        "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "where": "local cluster, real node (kubelet + containerd); CPU from each pod's cgroup",
    }
    (args.out / "capacity.json").write_text(json.dumps(doc, indent=2) + "\n")
    for label in ("ours", "baseline"):
        r = results[label]
        print(f"{label}: {r['users_p95_100ms']} users at p95 < {TARGET_P95_MS:.0f} ms on {r['cores_counted']} "
              f"cores -> {r['users_per_core_p95_100ms']} users/core "
              f"(per core used: {r['users_per_core_used_p95_100ms']})")  # fmt: skip
        for f in r["steps"]:
            print(f"  {f['users']:4d} users: p95 {f['p95_ms']} ms, p50 {f['p50_ms']} ms, {f['rps']} req/s, "
                  f"{f['errors']} errors, {f['cores_used']} cores")  # fmt: skip
        print(f"  fresh pod: Ready {r['ready_s']} s after creation; first /api/v1/all "
              f"{r['catalogue_after_ready'].get('first_ms')} ms, "
              f"{r['catalogue_after_ready'].get('first_over_warm')}x the warm median")  # fmt: skip
    print(f"runtime pod: Ready {runtime_ready} s after creation: {runtime_phases}")
    seed = doc["seed"]
    print(f"seed: {seed['seed_ide_users']} IDE users need {seed['replicas_needed']} IDE pods; the prod HPA allows "
          f"{seed['hpa_max_replicas']} ({seed['users_at_hpa_max']} users)")  # fmt: skip
    print(f"report: {args.out / 'capacity.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
