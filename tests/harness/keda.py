"""KEDA's operator and metrics adapter as local processes against a cluster of tests/harness/cluster.py.

In a cluster, KEDA runs as two pods; here they run on the host, wired the way the pods would be:
- env `WATCH_NAMESPACE=` (all namespaces), `POD_NAMESPACE=keda`, `KEDA_CLUSTER_OBJECT_NAMESPACE=keda`;
- the operator runs with `--enable-cert-rotation`: it generates Secret `keda/kedaorg-certs` (CA + a serving
  cert for keda-operator / keda-metrics-apiserver) and patches the APIService's caBundle; it exits once after
  writing the Secret, by design (a kubelet would restart it with the Secret mounted), so the harness copies
  `ca.crt`/`tls.crt`/`tls.key` into the `--cert-dir` and restarts it;
- the adapter serves `external.metrics.k8s.io` with those certs and talks to the operator over gRPC with them
  (`--metrics-service-address 127.0.0.1:<port>` and the in-cluster authority the cert names);
- the APIService `v1beta1.external.metrics.k8s.io` points at Service `keda/keda-metrics-apiserver` of type
  ExternalName -> 127.0.0.1 (kube-apiserver resolves ExternalName services for aggregated APIs; Endpoints
  with loopback addresses are rejected), so the HPA controller's metric reads reach the local adapter.

The operator dials scaler endpoints (RabbitMQ, Redis, ...) from the host: a TriggerAuthentication Secret
must hold a loopback address, not an in-cluster service name.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import Cluster, ClusterError
from .paths import tool
from .servers import Process, port_open, spawn, wait_for

NAMESPACE = "keda"
CERT_SECRET = "kedaorg-certs"
APISERVICE = "v1beta1.external.metrics.k8s.io"
ADAPTER_SERVICE = "keda-metrics-apiserver"
OPERATOR_SERVICE = "keda-operator"
CERT_FILES = ("ca.crt", "tls.crt", "tls.key")


@dataclass
class Keda:
    """Running KEDA processes; `external_metric()` reads a metric the way the HPA controller does."""

    cluster: Cluster
    workdir: Path
    adapter_port: int
    grpc_port: int
    operator: Process | None = None
    adapter: Process | None = None
    restarts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def ensure_alive(self) -> bool:
        for p in (self.operator, self.adapter):
            if p is not None:
                p.ensure_alive()
        return True

    def external_metric(self, namespace: str, metric: str, scaled_object: str) -> float:
        """Current value of an external metric served by the adapter (through the aggregated API)."""
        raw = self.cluster.kubectl(
            "get",
            "--raw",
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}"
            f"?labelSelector=scaledobject.keda.sh%2Fname%3D{scaled_object}",
            timeout=30,
        ).stdout
        items = json.loads(raw)["items"]
        return sum(_quantity(i["value"]) for i in items)

    def logs(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.log} ---\n{p.tail(lines)}" for p in (self.operator, self.adapter) if p is not None)

    def stop(self) -> None:
        for p in (self.adapter, self.operator):
            if p is not None:
                p.stop(grace=10)


def _quantity(q: str) -> float:
    """Kubernetes quantity to float (the adapter answers e.g. "1500m" or "42")."""
    suffixes = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 1024, "Mi": 1024**2}
    for s in sorted(suffixes, key=len, reverse=True):
        if q.endswith(s):
            return float(q[: -len(s)]) * suffixes[s]
    return float(q)


def wiring_objects(adapter_port: int, grpc_port: int) -> list[dict[str, Any]]:
    """Namespace, the ExternalName Services standing for KEDA's pods, and the APIService."""

    def external_name(name: str, port: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "keda"}},
            "spec": {
                "type": "ExternalName",
                "externalName": "127.0.0.1",
                "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
            },
        }

    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        external_name(ADAPTER_SERVICE, adapter_port),
        external_name(OPERATOR_SERVICE, grpc_port),
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": APISERVICE, "labels": {"app.kubernetes.io/part-of": "keda"}},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                # caBundle is filled in by the operator's cert rotation (EnableAPIServicePatching)
                "service": {"name": ADAPTER_SERVICE, "namespace": NAMESPACE, "port": adapter_port},
            },
        },
    ]


def _secret_certs(cluster: Cluster) -> dict[str, bytes] | None:
    proc = cluster.kubectl("get", "secret", CERT_SECRET, "-n", NAMESPACE, "-o", "json", check=False, timeout=20)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout).get("data") or {}
    if not all(data.get(k) for k in CERT_FILES):
        return None
    return {k: base64.b64decode(data[k]) for k in CERT_FILES}


def _apiservice_available(cluster: Cluster) -> bool:
    proc = cluster.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False, timeout=20)
    if proc.returncode != 0:
        return False
    conds = json.loads(proc.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conds)


@contextlib.contextmanager
def keda(cluster: Cluster, *, timeout: float = 180, log_level: str = "info") -> Iterator[Keda]:
    """Start KEDA's operator and adapter for the block; stop them and delete their wiring afterwards.

    Needs the KEDA CRDs (Cluster.install_crds) and binaries keda-operator / keda-adapter from `make tools`.
    """
    from .servers import free_port

    operator_bin, adapter_bin = tool("keda-operator"), tool("keda-adapter")
    workdir = Path(tempfile.mkdtemp(prefix="lfp-keda-"))
    certs = workdir / "certs"
    certs.mkdir()
    adapter_port, grpc_port = free_port(), free_port()
    k = Keda(cluster, workdir, adapter_port, grpc_port)
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "WATCH_NAMESPACE": "",
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
        "KEDA_HTTP_DEFAULT_TIMEOUT": "3000",
        "GOMAXPROCS": "2",
    }
    operator_cmd = [
        operator_bin,
        "--leader-elect=false",
        "--enable-cert-rotation=true",
        f"--cert-dir={certs}",
        f"--metrics-bind-address=127.0.0.1:{free_port()}",
        f"--health-probe-bind-address=127.0.0.1:{free_port()}",
        f"--metrics-service-bind-address=127.0.0.1:{grpc_port}",
        f"--zap-log-level={log_level}",
        "--zap-encoder=console",
        "--enable-webhook-patching=false",
        f"--ca-dir={workdir / 'custom-ca'}",
    ]
    try:
        try:
            cluster.apply(wiring_objects(adapter_port, grpc_port))
            k.operator = spawn("keda-operator", operator_cmd, workdir / "operator.log", env=env)

            # 1. cert rotation writes the Secret (the operator may exit afterwards: a kubelet would restart it)
            operator = k.operator

            def rotated() -> dict[str, bytes] | None:
                found = _secret_certs(cluster)
                if found is None and not operator.alive():  # exited without a Secret: look once more, then fail
                    found = _secret_certs(cluster)
                    if found is None:
                        operator.ensure_alive()
                return found

            secret = wait_for(
                rotated,
                timeout,
                f"Secret {NAMESPACE}/{CERT_SECRET} from the operator's cert rotation",
            )
            for name, data in secret.items():
                (certs / name).write_bytes(data)
                (certs / name).chmod(0o600)
            # 2. the restart a kubelet would do, now with the certs "mounted" in --cert-dir
            with contextlib.suppress(Exception):
                k.operator.popen.wait(15)
            k.operator.stop(grace=10)
            k.restarts += 1
            k.operator = spawn("keda-operator", operator_cmd, workdir / "operator.log", env=env)
            wait_for(lambda: k.operator.ensure_alive() and port_open(grpc_port), timeout, "KEDA operator gRPC")  # type: ignore[union-attr]
            # 3. the adapter, serving external.metrics.k8s.io with the same certs
            kc = str(cluster.kubeconfig)
            k.adapter = spawn(
                "keda-adapter",
                [
                    adapter_bin,
                    f"--secure-port={adapter_port}",
                    "--bind-address=127.0.0.1",
                    f"--port={free_port()}",
                    f"--lister-kubeconfig={kc}",
                    f"--authentication-kubeconfig={kc}",
                    f"--authorization-kubeconfig={kc}",
                    f"--tls-cert-file={certs / 'tls.crt'}",
                    f"--tls-private-key-file={certs / 'tls.key'}",
                    f"--client-ca-file={certs / 'ca.crt'}",
                    f"--cert-dir={certs}",
                    f"--metrics-service-address=127.0.0.1:{grpc_port}",
                    f"--metrics-service-grpc-authority={OPERATOR_SERVICE}.{NAMESPACE}.svc.cluster.local",
                    "--zap-log-level=info",
                ],
                workdir / "adapter.log",
                env=env,
            )
            wait_for(
                lambda: k.ensure_alive() and _apiservice_available(cluster),
                timeout,
                f"APIService {APISERVICE} Available",
                interval=1,
            )
        except Exception as exc:
            raise ClusterError(f"KEDA did not start: {exc}\n{k.logs()}") from exc
        yield k
    finally:
        k.stop()
        with contextlib.suppress(Exception):
            cluster.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)
