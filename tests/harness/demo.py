"""`make demo`: a cluster, the dev profile installed and running for real, a URL where Langflow answers.

    python -m tests.harness.demo --cluster local      # default: the local control plane + its real node
    python -m tests.harness.demo --cluster kind       # a kind cluster from tools/kind-config.yaml (needs Docker)
    python -m tests.harness.demo --cluster existing   # whatever $KUBECONFIG points at

On `local` the pods of the IDE, runtime, broker and database run as containers on the real node (kubelet +
containerd, images from `make images`); Qdrant and the bundled monitoring (images that cannot be built here) run on
kwok nodes, simulated. The demo waits until Langflow answers, serves it on 127.0.0.1 (a relay to the IDE Service,
kept until `make cluster-down`), prints the generated admin login, and runs one flow through the queue. Re-running
it reuses the cluster, the images and the release.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import realplatform as rp
from .cluster import CRD_DIRS, DEFAULT_DIR, Cluster, LocalCluster, existing_cluster, kind_cluster
from .node import NODE_NAME
from .paths import ROOT

NAMESPACE = "langflow"
RELEASE = "lf"


def say(msg: str, t0: float = time.monotonic()) -> None:
    print(f"demo: [+{time.monotonic() - t0:5.1f}s] {msg}", flush=True)


def get_cluster(kind: str, kubeconfig: str | None) -> Cluster:
    if kind == "local":
        say(f"starting the local control plane in {DEFAULT_DIR} (reused when already running)")
        return LocalCluster(DEFAULT_DIR, progress=lambda m: say(f"  {m}"), real_node=True).up()
    if kind == "kind":
        from images import build as images_build

        DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
        cluster, _ = kind_cluster(DEFAULT_DIR / "kind-kubeconfig", progress=say)
        say("images: the same `make images` output, loaded with `kind load image-archive`")
        images_build.kind_load(images_build.build(progress=lambda m: say(f"  {m}")), "langflow-platform")
        return cluster
    return existing_cluster(kubeconfig)


def summary(cluster: Cluster, ns: str) -> str:
    """Workloads, pods, services, ingresses and volumes of the release, as kubectl prints them."""
    sel = f"app.kubernetes.io/instance={RELEASE}"
    parts = []
    for what in ("deployments,statefulsets,cronjobs", "pods -o wide", "services", "ingresses", "pvc",
                 "scaledobjects,hpa"):  # fmt: skip
        args = ["get", *what.split(), "-n", ns, "-l", sel]
        out = cluster.kubectl(*args, check=False).stdout.strip()
        if out:
            parts.append(out)
    return "\n\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.harness.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--cluster", choices=("local", "kind", "existing"), default="local")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", ""), help="for --cluster existing")
    p.add_argument("--profile", default="dev", help="values/<profile>.yaml to install (default dev)")
    p.add_argument("--namespace", default=NAMESPACE)
    p.add_argument("--timeout", default="10m", help="helm --wait timeout")
    p.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "7860")), help="local port for the UI")
    args = p.parse_args(argv)
    t0 = time.monotonic()

    cluster = get_cluster(args.cluster, args.kubeconfig or None)
    say(f"installing CRDs ({', '.join(CRD_DIRS)})")
    cluster.install_crds()
    say(f"namespace {args.namespace} (Pod Security: restricted, enforced)")
    cluster.create_namespace(args.namespace, restricted=True)
    files = " ".join(f"-f {f.relative_to(ROOT)}" for f in rp.values_files(args.profile, args.cluster))
    say(f"helm upgrade --install {RELEASE} charts/langflow-platform {files} --wait (first start: ~1-2 min)")
    notes = rp.install(cluster, RELEASE, args.namespace, args.profile, timeout=args.timeout)
    status = json.loads(cluster.helm("status", RELEASE, "-n", args.namespace, "-o", "json"))
    say(f"release {RELEASE}: revision {status['version']}, {status['info']['status']}")
    print("\n" + summary(cluster, args.namespace) + "\n")
    print(notes.split("NOTES:", 1)[-1].strip() + "\n")
    release = rp.Release(cluster, RELEASE, args.namespace)
    kc = Path(cluster.kubeconfig)
    if args.cluster == "local":
        target = release.ide_url().removeprefix("http://")
        url = rp.Relay(DEFAULT_DIR, "ide").start(args.port, target)
        say(f"relay 127.0.0.1:{args.port} -> IDE Service {target} (through kube-proxy on the real node)")
        say("waiting until Langflow answers /health_check (database and cache ok)")
        rp.wait_healthy(url, timeout=300)
        user, password = release.login()
        with rp.api_session(url, user, password):
            pass
        say(f"logged in to the API as {user}")
        flow = "echo"
        say(f"running flow '{flow}' through the queue ({release.broker()['queue']})")
        result = rp.run_job(release, flow, "hello from make demo", timeout=180)
        say(f"job {result['job_id']}: {result['status']} in {result.get('duration_ms', 0):.0f} ms on runtime pod "
            f"{result['worker']}; outputs: {json.dumps(result.get('outputs'))[:300]}")  # fmt: skip
        kwok = [
            p["metadata"]["name"]
            for p in rp.pods(cluster, args.namespace, field_selector=f"spec.nodeName!={NODE_NAME}")
        ]
        if kwok:
            say(f"simulated on kwok nodes (images not buildable here): {', '.join(kwok)}")
        print(f"\nOpen the IDE: {url}\n  user: {user}\n  password: {password}\n")
        print(f"  export KUBECONFIG={kc}\n  kubectl -n {args.namespace} get pods -o wide")
        print(f"  stop everything: make cluster-down        (demo took {time.monotonic() - t0:.0f}s)")
    else:
        print("Reach it:")
        print(f"  export KUBECONFIG={kc}")
        print(f"  kubectl -n {args.namespace} port-forward svc/{release.ide_service()['metadata']['name']} 7860:7860"
              "   # then http://127.0.0.1:7860/")  # fmt: skip
        user, password = release.login()
        print(f"  user: {user}\n  password: {password}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (rp.PlatformError, RuntimeError) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
