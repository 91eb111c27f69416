"""`make demo`: a cluster, the dev profile installed with helm --wait, and what is running and how to reach it.

    python -m tests.harness.demo --cluster local      # default: the local control plane (make cluster-up's)
    python -m tests.harness.demo --cluster kind       # a kind cluster from tools/kind-config.yaml (needs Docker)
    python -m tests.harness.demo --cluster existing   # whatever $KUBECONFIG points at

The toolchain is assumed built (`make demo` runs `make tools deps` first). The local cluster stays up after the
demo (stop it with `make cluster-down`); on it kwok simulates the pods - the API objects, scheduling, admission,
readiness and volumes are real, no container runs. On kind or a real cluster the pods run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .cluster import CRD_DIRS, DEFAULT_DIR, Cluster, LocalCluster, existing_cluster, kind_cluster
from .paths import UMBRELLA, profile_file

NAMESPACE = "langflow"
RELEASE = "lf"


def say(msg: str, t0: float = time.monotonic()) -> None:
    print(f"demo: [+{time.monotonic() - t0:5.1f}s] {msg}", flush=True)


def get_cluster(kind: str, kubeconfig: str | None) -> Cluster:
    if kind == "local":
        say(f"starting the local control plane in {DEFAULT_DIR} (reused when already running)")
        return LocalCluster(DEFAULT_DIR, progress=lambda m: say(f"  {m}")).up()
    if kind == "kind":
        DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
        cluster, _ = kind_cluster(DEFAULT_DIR / "kind-kubeconfig", progress=say)
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
    args = p.parse_args(argv)

    cluster = get_cluster(args.cluster, args.kubeconfig or None)
    say(f"installing CRDs ({', '.join(CRD_DIRS)})")
    cluster.install_crds()
    say(f"namespace {args.namespace} (Pod Security: restricted, enforced)")
    cluster.create_namespace(args.namespace, restricted=True)
    say(f"helm upgrade --install {RELEASE} charts/langflow-platform -f values/{args.profile}.yaml --wait")
    notes = cluster.helm(
        "upgrade", "--install", RELEASE, str(UMBRELLA), "-n", args.namespace, "-f", str(profile_file(args.profile)),
        "--wait", "--timeout", args.timeout,
        timeout=3600,
    )  # fmt: skip
    status = json.loads(cluster.helm("status", RELEASE, "-n", args.namespace, "-o", "json"))
    say(f"release {RELEASE}: revision {status['version']}, {status['info']['status']}")
    print("\n" + summary(cluster, args.namespace) + "\n")
    print(notes.split("NOTES:", 1)[-1].strip() + "\n")
    kc = Path(cluster.kubeconfig)
    print("Reach it:")
    print(f"  export KUBECONFIG={kc}")
    print(f"  kubectl -n {args.namespace} get pods")
    if args.cluster == "local":
        print("  (local cluster: kwok simulates the pods, so port-forwards have no process behind them; the harness")
        print("   runs real Langflow and workers as processes: `make test MARK=load`, `make test MARK=scaling`)")
        print("  stop it: make cluster-down")
    else:
        print(f"  kubectl -n {args.namespace} port-forward svc/{RELEASE}-ide 7860:7860   # then http://127.0.0.1:7860/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
