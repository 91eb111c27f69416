"""Kubernetes clusters for the harness: a local control plane built from .tools, a kind cluster, or any kubeconfig.

`local` (default) runs etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and metrics-server as
local processes on loopback ports. kwok plays the kubelets: a few fake nodes in two zones
(`topology.kubernetes.io/zone`), pods that turn Ready, PVCs provisioned and bound, and resource usage for
metrics-server taken from pod annotations `kwok.x-k8s.io/usage-cpu` / `-memory` (default 1m CPU, 1Mi).
The apiserver gets front-proxy (request-header) certificates so aggregated APIs (KEDA's external metrics,
metrics-server) work. Nothing is downloaded: every binary comes from
`make tools`, the kwok Stage files from the kwok Go module already in the module cache.

    python -m tests.harness.cluster up       # what `make cluster-up` runs; prints the KUBECONFIG to export
    python -m tests.harness.cluster down     # stops it and deletes its data
    python -m tests.harness.cluster status

`kind`: a kind cluster from tools/kind-config.yaml (needs Docker; not available on the CI machine here).
`existing`: whatever $KUBECONFIG (or --kubeconfig-path) points at.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import helm as helm_lib
from .daemons import DaemonState
from .node import KWOK_POD_RANGE, NODE_IP, NODE_NAME, SERVICE_RANGE, NodeError, RealNode, images_importer
from .paths import ROOT, TOOLS, UMBRELLA, tool
from .servers import Process, free_port, wait_for

LOOPBACK = "127.0.0.1"
DEFAULT_DIR = TOOLS / "cluster"
KIND_CONFIG = ROOT / "tools" / "kind-config.yaml"
KIND_NAME = "langflow-platform"
KWOK_STAGES = ROOT / "tools" / "kwok" / "stages.yaml"
CRD_DIRS = ("keda", "cert-manager", "cnpg", "prometheus-operator")
ZONES = ("zone-a", "zone-b")
SERVICE_CIDR = SERVICE_RANGE
POD_CIDR = KWOK_POD_RANGE
# Components in start order; stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "metrics-server")
PSS_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}

# the secret generator Job on the real node (see Cluster._placed)
SECRET_GENERATOR_OVERLAY = ROOT / "tests" / "harness" / "values" / "secret-generator.yaml"

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


class ClusterError(RuntimeError):
    """The cluster did not come up, or a kubectl/helm call against it failed."""


# ------------------------------------------------------------------------------------------------- Cluster
@dataclass
class Cluster:
    """A reachable cluster: its kubeconfig and helpers to drive it with kubectl, helm and the Python client."""

    kind: str
    kubeconfig: Path
    workdir: Path | None = None
    context: str = ""
    _generator_charts: dict[str, bool] = field(default_factory=dict, repr=False)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.update(extra)
        return env

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        ctx = ["--context", self.context] if self.context else []
        proc = subprocess.run(
            [tool("kubectl"), *ctx, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
        return proc

    def apply(self, objects: Sequence[dict[str, Any]] | str, *, server_side: bool = False) -> None:
        text = objects if isinstance(objects, str) else yaml.safe_dump_all(list(objects), sort_keys=False)
        args = ["apply", "-f", "-"]
        if server_side:
            args += ["--server-side", "--force-conflicts"]
        self.kubectl(*args, stdin=text)

    def helm(self, *args: str, timeout: float = 600) -> str:
        ctx = ["--kube-context", self.context] if self.context else []
        return helm_lib.run([*self._placed(args), *ctx], timeout=timeout, env=self.env())

    def _placed(self, args: Sequence[str]) -> list[str]:
        """On the local cluster, an install, upgrade or template of the umbrella also gets the harness overlay that
        runs the secret generator Job on the real node: on a kwok node its pod would "complete" without running,
        and the release would have no Secrets. It comes right after the chart, so the caller's values still win."""
        out = list(args)
        if self.kind != "local" or out[:1] not in (["install"], ["upgrade"], ["template"]):
            return out
        # the umbrella as a folder, a packaged archive or an OCI reference (oci://host/path/langflow-platform)
        chart = re.compile(rf"^{re.escape(str(UMBRELLA))}$|(^|/)langflow-platform(-[0-9][^/]*\.tgz)?$")
        at = next((i for i, a in enumerate(out) if chart.search(a)), None)
        if at is not None and self._has_secret_generator(out[at], self._chart_flags(out)):
            out[at + 1 : at + 1] = ["-f", str(SECRET_GENERATOR_OVERLAY)]
        return out

    @staticmethod
    def _chart_flags(args: Sequence[str]) -> list[str]:
        """The flags of a helm call that pick the chart itself (`--version X`, `--plain-http`)."""
        flags: list[str] = []
        for i, a in enumerate(args):
            if a == "--plain-http" or a.startswith("--version="):
                flags.append(a)
            elif a == "--version" and i + 1 < len(args):
                flags += [a, args[i + 1]]
        return flags

    def _has_secret_generator(self, chart: str, flags: Sequence[str]) -> bool:
        """Whether this umbrella (a folder, archive or OCI reference) declares `secretGenerator`: a chart version
        from before the generator rejects the overlay's key (its schema is closed), and needs none."""
        key = " ".join([chart, *flags])
        if key not in self._generator_charts:
            values = yaml.safe_load(helm_lib.run(["show", "values", chart, *flags], env=self.env())) or {}
            self._generator_charts[key] = "secretGenerator" in values
        return self._generator_charts[key]

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for this cluster (a new one per call: clients are not thread-safe)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig), context=self.context or None)

    # ---------------------------------------------------------------- cluster-wide set-up used by the tests
    def install_crds(self, dirs: Sequence[str] = CRD_DIRS, timeout: float = 120) -> list[str]:
        """Apply the CRDs extracted by `tools/install.sh crds` (server-side: some are too big for
        client-side apply) and wait until they are Established. Returns the CRD names."""
        root = TOOLS / "crds"
        names: list[str] = []
        for d in dirs:
            files = sorted((root / d).glob("*.yaml"))
            if not files:
                raise ClusterError(f"no CRDs in {root / d}: run `tools/install.sh crds` (part of `make tools`)")
            for f in files:
                for doc in yaml.load_all(f.read_text(), Loader=yaml.BaseLoader):  # CRDs hold a bare `=`
                    if doc and doc.get("kind") == "CustomResourceDefinition":
                        names.append(doc["metadata"]["name"])
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(root / d), timeout=timeout)
        self.kubectl(
            "wait",
            "--for=condition=Established",
            f"--timeout={int(timeout)}s",
            *[f"crd/{n}" for n in names],
            timeout=timeout + 30,
        )
        return names

    def create_namespace(self, name: str, *, restricted: bool = True, labels: dict[str, str] | None = None) -> None:
        """A namespace labelled for Pod Security "restricted" enforcement (admission is real)."""
        meta: dict[str, Any] = {"name": name, "labels": {**(PSS_LABELS if restricted else {}), **(labels or {})}}
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": meta}])
        # the service account controller creates "default" shortly after; pods need it
        wait_for(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            60,
            f"ServiceAccount default in namespace {name}",
        )

    def delete_namespace(self, name: str, *, wait: bool = False) -> None:
        self.kubectl("delete", "namespace", name, "--ignore-not-found", f"--wait={str(wait).lower()}", timeout=180)


# ------------------------------------------------------------------------------------------------------ PKI
def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args[:3])} failed: {proc.stderr}")


def _ec_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path.name, cwd=path.parent)
    path.chmod(0o600)


def _ca(pki: Path, name: str, cn: str) -> None:
    _ec_key(pki / f"{name}.key")
    _openssl(
        "req", "-x509", "-new", "-key", f"{name}.key", "-sha256", "-days", "3650", "-subj", f"/CN={cn}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", f"{name}.crt",
        cwd=pki,
    )  # fmt: skip


def _leaf(pki: Path, name: str, ca: str, subject: str, *, sans: Sequence[str] = (), usage: str = "clientAuth") -> None:
    _ec_key(pki / f"{name}.key")
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=pki)
    ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
           f"extendedKeyUsage={usage}"]  # fmt: skip
    if sans:
        ext.append("subjectAltName=" + ",".join(sans))
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-sha256", "-days", "3650", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
        cwd=pki,
    )  # fmt: skip


def make_pki(pki: Path) -> None:
    """Cluster CA, apiserver serving cert, admin client cert (system:masters), service-account key pair, and
    the front-proxy CA + client cert the apiserver presents to aggregated API servers."""
    pki.mkdir(parents=True, exist_ok=True)
    _ca(pki, "ca", "lfp-local-ca")
    sans = [f"IP:{LOOPBACK}", "IP:10.96.0.1", f"IP:{NODE_IP}", "DNS:localhost", "DNS:kubernetes",
            "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local"]  # fmt: skip
    _leaf(pki, "apiserver", "ca", "/CN=kube-apiserver", sans=sans, usage="serverAuth")
    _leaf(pki, "admin", "ca", "/O=system:masters/CN=lfp-admin", sans=[f"IP:{LOOPBACK}", "DNS:localhost"],
          usage="serverAuth,clientAuth")  # fmt: skip
    _ca(pki, "front-proxy-ca", "lfp-front-proxy-ca")
    _leaf(pki, "front-proxy-client", "front-proxy-ca", "/CN=front-proxy-client")
    _ec_key(pki / "sa.key")
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    _leaf(pki, "metrics-server", "ca", "/CN=metrics-server", usage="serverAuth",
          sans=[f"IP:{LOOPBACK}", "DNS:metrics-server.kube-system.svc", "DNS:localhost"])  # fmt: skip
    # the real node: kubelet's serving cert and client identity (Node authorizer), kube-proxy's identity (bound to
    # system:node-proxier by default), and the apiserver's client cert for logs/exec/port-forward on the kubelet
    _leaf(pki, "kubelet", "ca", f"/CN={NODE_NAME}", usage="serverAuth", sans=[f"IP:{NODE_IP}", f"DNS:{NODE_NAME}"])
    _leaf(pki, "kubelet-client", "ca", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
    _leaf(pki, "kube-proxy", "ca", "/CN=system:kube-proxy")
    _leaf(pki, "apiserver-kubelet-client", "ca", "/O=system:masters/CN=kube-apiserver-kubelet-client")


def write_kubeconfig(path: Path, server: str, pki: Path, name: str = "lfp-local", cert: str = "admin") -> None:
    """A kubeconfig for `server` authenticating with the client certificate pki/<cert>.crt."""
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {"client-certificate": str(pki / f"{cert}.crt"), "client-key": str(pki / f"{cert}.key")},
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)


# --------------------------------------------------------------------------------------------------- kwok
def kwok_module_dir(version: str | None = None) -> Path:
    """The kwok Go module in the module cache (downloaded with `go mod download` when absent)."""
    version = version or _pinned("KWOK_VERSION")
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    mod = Path(gomodcache) / "sigs.k8s.io" / f"kwok@{version}"
    if not mod.is_dir():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                ["go", "mod", "download", f"sigs.k8s.io/kwok@{version}"],
                cwd=tmp,
                check=True,
                capture_output=True,
                timeout=600,
                env={**os.environ, "GOFLAGS": "-mod=mod"},
            )
    return mod


def _kustomize_docs(directory: Path) -> list[dict[str, Any]]:
    """The objects a kustomization lists under `resources:` (files and nested directories), in order."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text()) or {}
    docs: list[dict[str, Any]] = []
    for res in kust.get("resources", []):
        p = (directory / res).resolve()
        if p.is_dir():
            docs += _kustomize_docs(p)
        else:
            docs += [d for d in yaml.safe_load_all(p.read_text()) if d]
    return docs


def kwok_config(module: Path | None = None, spec: Path = KWOK_STAGES) -> tuple[str, list[dict[str, Any]]]:
    """Assemble kwok's --config from the upstream kustomize directories named in tools/kwok/stages.yaml.

    Returns (config text for kwok, cluster objects to apply: StorageClass etc.). kwok-only kinds
    (Stage, Metric, ResourceUsage, ...) go to kwok; everything else is applied to the cluster.
    """
    module = module or kwok_module_dir()
    wanted = yaml.safe_load(spec.read_text())
    kwok_docs: list[dict[str, Any]] = []
    cluster_docs: list[dict[str, Any]] = []
    for rel in wanted["kustomize"]:
        for doc in _kustomize_docs(module / "kustomize" / rel):
            name = doc.get("metadata", {}).get("name")
            if doc.get("apiVersion", "").startswith("kwok.x-k8s.io/"):
                if doc.get("kind") == "Stage" and name in wanted.get("delays", {}):
                    old = doc["spec"].get("delay") or {}
                    delay: dict[str, Any] = {"durationMilliseconds": int(wanted["delays"][name])}
                    if "durationFrom" in old:
                        delay["durationFrom"] = old["durationFrom"]
                    doc["spec"]["delay"] = delay
                if all((d["kind"], d["metadata"]["name"]) != (doc["kind"], name) for d in kwok_docs):
                    kwok_docs.append(doc)  # metrics/usage includes metrics/resource again
            elif doc.get("kind") in wanted.get("clusterKinds", []):
                cluster_docs.append(doc)
    for rel in wanted.get("files", []):
        kwok_docs += [d for d in yaml.safe_load_all((spec.parent / rel).read_text()) if d]
    return yaml.safe_dump_all(kwok_docs, sort_keys=False), cluster_docs


def kwok_nodes(count: int, zones: Sequence[str] = ZONES, node_port: int = 0) -> list[dict[str, Any]]:
    """Fake nodes for kwok, spread round-robin over `zones`."""
    nodes = []
    for i in range(count):
        zone = zones[i % len(zones)]
        name = f"kwok-{zone}-{i // len(zones)}"
        status: dict[str, Any] = {
            "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "fake"},
        }
        if node_port:
            status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": node_port}}
        nodes.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                        # metrics-server scrapes this path on kwok's server (kwok's metrics/resource Metric)
                        "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource",
                    },
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "node-role.kubernetes.io/worker": "",
                        "topology.kubernetes.io/region": "local",
                        "topology.kubernetes.io/zone": zone,
                    },
                },
                "status": status,
            }
        )
    return nodes


def _pinned(key: str) -> str:
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1].strip().strip('"')
    raise KeyError(f"{key} not in tools/versions.env")


def metrics_server_wiring(port: int, pki: Path) -> list[dict[str, Any]]:
    """Service kube-system/metrics-server of type ExternalName -> 127.0.0.1 and the APIService metrics.k8s.io
    (the aggregator resolves ExternalName services; Endpoints with loopback addresses are rejected)."""
    import base64

    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "metrics-server", "namespace": "kube-system"},
            "spec": {"type": "ExternalName", "externalName": LOOPBACK, "ports": [{"name": "https", "port": port}]},
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "caBundle": base64.b64encode((pki / "ca.crt").read_bytes()).decode(),
                "service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
            },
        },
    ]


def _apiservice_available(cluster: Cluster, name: str) -> bool:
    proc = cluster.kubectl("get", "apiservice", name, "-o", "json", check=False, timeout=20)
    if proc.returncode != 0:
        return False
    conds = json.loads(proc.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conds)


# ------------------------------------------------------------------------------------------- LocalCluster
@dataclass
class LocalCluster(DaemonState):
    """etcd + kube-apiserver + kube-controller-manager + kube-scheduler + kwok as local processes under `workdir`.

    `up()` writes `workdir/state.json` (ports, pids) so `down()` works from another process (make cluster-down).
    """

    workdir: Path = DEFAULT_DIR
    nodes: int = 6
    zones: Sequence[str] = ZONES
    progress: Progress = _quiet
    real_node: bool = False  # also start the real node (kubelet + containerd) and import the images it runs
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def cluster(self) -> Cluster:
        return Cluster("local", self.kubeconfig, self.workdir)

    def node(self) -> RealNode:
        """The real node of this cluster (started by start_node(); its state lives in workdir/node)."""
        port = int(self._state().get("ports", {}).get("apiserver", 0))
        return RealNode(self.workdir / "node", self.workdir / "pki", self.kubeconfig, port, progress=self.progress)

    def start_node(self) -> RealNode:
        """Join the real node to the running control plane (no-op when it already runs)."""
        node = self.node()
        if node.running() and node.ready():
            recycled = node.recycle_volumes()
            self.progress(
                f"real node {NODE_NAME} already running" + (f"; recycled {len(recycled)} volumes" if recycled else "")
            )
            return node
        node.down(quiet=True)
        try:
            node.up(import_images=images_importer(progress=self.progress))
        except NodeError:
            raise
        except Exception as exc:
            raise NodeError(f"real node: {exc}") from exc
        return node

    def running(self) -> bool:
        return self._recorded_alive() and (not self.real_node or self.node().running())

    # -------------------------------------------------------------------------------------------------- up
    def up(self, timeout: float = 180) -> Cluster:
        if self.running():
            self.progress(f"local cluster already running (KUBECONFIG={self.kubeconfig})")
            return self.cluster()
        if self.real_node and self._recorded_alive():
            self.progress("local control plane running; starting the real node")
            self.start_node()
            return self.cluster()
        self.down(quiet=True)
        t0 = time.monotonic()
        step = lambda msg: self.progress(f"[+{time.monotonic() - t0:5.1f}s] {msg}")  # noqa: E731
        bins = {c: tool(c) for c in COMPONENTS}
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki, logs = self.workdir / "pki", self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        step("certificates (cluster CA, admin, front-proxy, service accounts)")
        make_pki(pki)
        ports = {"etcd": free_port(), "etcd-peer": free_port(), "apiserver": free_port(), "kwok": free_port()}
        server = f"https://{LOOPBACK}:{ports['apiserver']}"
        write_kubeconfig(self.kubeconfig, server, pki)
        kwok_text, cluster_objects = kwok_config()
        (self.workdir / "kwok.yaml").write_text(kwok_text)
        self.state_file.write_text(json.dumps({"ports": ports, "pids": {}, "kubeconfig": str(self.kubeconfig)}))
        try:
            step(f"etcd on {LOOPBACK}:{ports['etcd']}")
            etcd_url = f"http://{LOOPBACK}:{ports['etcd']}"
            self._start(
                "etcd",
                [bins["etcd"], "--name=lfp", f"--data-dir={self.workdir / 'etcd'}",
                 f"--listen-client-urls={etcd_url}", f"--advertise-client-urls={etcd_url}",
                 f"--listen-peer-urls=http://{LOOPBACK}:{ports['etcd-peer']}",
                 f"--initial-advertise-peer-urls=http://{LOOPBACK}:{ports['etcd-peer']}",
                 f"--initial-cluster=lfp=http://{LOOPBACK}:{ports['etcd-peer']}",
                 "--unsafe-no-fsync=true", "--quota-backend-bytes=4294967296", "--log-level=warn"],
                logs,
            )  # fmt: skip
            self._wait_http(f"{etcd_url}/health", 60, "etcd /health")
            step(f"kube-apiserver on {server}")
            self._start(
                "kube-apiserver",
                [bins["kube-apiserver"], f"--etcd-servers={etcd_url}", f"--bind-address={LOOPBACK}",
                 f"--advertise-address={LOOPBACK}", f"--secure-port={ports['apiserver']}",
                 f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
                 f"--client-ca-file={pki / 'ca.crt'}", f"--service-account-key-file={pki / 'sa.pub'}",
                 f"--service-account-signing-key-file={pki / 'sa.key'}",
                 "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                 f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
                 "--endpoint-reconciler-type=none",
                 # front proxy: the apiserver authenticates itself to aggregated API servers (KEDA, metrics-server)
                 f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                 "--requestheader-allowed-names=front-proxy-client",
                 "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
                 "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                 f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                 f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                 # logs/exec/port-forward/metrics on the real node's kubelet (webhook authn/authz there)
                 f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                 f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
                 f"--kubelet-certificate-authority={pki / 'ca.crt'}",
                 "--kubelet-preferred-address-types=InternalIP,Hostname"],
                logs,
            )  # fmt: skip
            cluster = self.cluster()
            wait_for(
                lambda: (
                    self._check_alive()
                    and cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0
                ),
                timeout,
                "kube-apiserver /readyz",
                interval=0.5,
            )
            kc = str(self.kubeconfig)
            step("kube-controller-manager and kube-scheduler")
            self._start(
                "kube-controller-manager",
                [bins["kube-controller-manager"], f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                 f"--authorization-kubeconfig={kc}", "--leader-elect=false", "--secure-port=0",
                 f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
                 f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
                 f"--cluster-cidr={POD_CIDR}", f"--service-cluster-ip-range={SERVICE_CIDR}",
                 "--controllers=*", "--horizontal-pod-autoscaler-sync-period=15s"],
                logs,
            )  # fmt: skip
            self._start(
                "kube-scheduler",
                [bins["kube-scheduler"], f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                 f"--authorization-kubeconfig={kc}", "--leader-elect=false", "--secure-port=0"],
                logs,
            )  # fmt: skip
            step(f"kwok ({self.nodes} fake nodes in zones {', '.join(self.zones)})")
            self._start(
                "kwok",
                [bins["kwok"], f"--kubeconfig={kc}", f"--config={self.workdir / 'kwok.yaml'}",
                 "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                 "--node-lease-duration-seconds=40", f"--cidr={POD_CIDR}", f"--node-ip={LOOPBACK}",
                 f"--node-port={ports['kwok']}", f"--server-address={LOOPBACK}:{ports['kwok']}",
                 f"--tls-cert-file={pki / 'admin.crt'}", f"--tls-private-key-file={pki / 'admin.key'}"],
                logs,
            )  # fmt: skip
            if cluster_objects:
                cluster.apply(cluster_objects)
            cluster.apply(kwok_nodes(self.nodes, self.zones, ports["kwok"]))
            wait_for(lambda: self._check_alive() and self._nodes_ready(cluster), timeout, "kwok nodes to be Ready")
            wait_for(
                lambda: cluster.kubectl("get", "serviceaccount", "default", check=False).returncode == 0,
                timeout,
                "the service account controller",
            )
            step("metrics-server (kubelet resource metrics from kwok, pod usage from annotations)")
            ports["metrics-server"] = free_port()
            cluster.apply(metrics_server_wiring(ports["metrics-server"], pki))
            self._start(
                "metrics-server",
                [bins["metrics-server"], f"--kubeconfig={kc}", f"--authentication-kubeconfig={kc}",
                 f"--authorization-kubeconfig={kc}", f"--bind-address={LOOPBACK}",
                 f"--secure-port={ports['metrics-server']}", f"--tls-cert-file={pki / 'metrics-server.crt'}",
                 f"--tls-private-key-file={pki / 'metrics-server.key'}", "--kubelet-insecure-tls",
                 "--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP",
                 "--metric-resolution=15s"],
                logs,
            )  # fmt: skip
            state = self._state()
            state["ports"] = ports
            self.state_file.write_text(json.dumps(state))
            wait_for(
                lambda: self._check_alive() and _apiservice_available(cluster, "v1beta1.metrics.k8s.io"),
                timeout,
                "APIService v1beta1.metrics.k8s.io (metrics-server) Available",
                interval=0.5,
            )
            if self.real_node:
                step("real node (containerd, kubelet, kube-proxy, CoreDNS; images imported)")
                self.start_node()
            step(f"ready: {self.nodes} kwok nodes{' + 1 real node' if self.real_node else ''}; "
                 f"export KUBECONFIG={self.kubeconfig}")  # fmt: skip
            return cluster
        except BaseException:
            self.progress(self.diagnostics(COMPONENTS))
            self.down(quiet=True)
            raise

    def _wait_http(self, url: str, timeout: float, what: str) -> None:
        import requests

        wait_for(lambda: self._check_alive() and requests.get(url, timeout=2).ok, timeout, what)

    @staticmethod
    def _nodes_ready(cluster: Cluster) -> bool:
        out = cluster.kubectl("get", "nodes", "-o", "json", check=False, timeout=20)
        if out.returncode != 0:
            return False
        items = json.loads(out.stdout)["items"]
        ready = [
            n
            for n in items
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))
        ]
        return len(items) > 0 and len(ready) == len(items)

    # ------------------------------------------------------------------------------------------------ down
    def down(self, *, quiet: bool = False, keep_data: bool = False) -> None:
        state = self._state()
        pids: dict[str, int] = state.get("pids", {})
        from .realplatform import Relay

        Relay.stop_all(self.workdir)  # the demo's 127.0.0.1 relays
        if (self.workdir / "node" / "state.json").exists():
            self.node().down(quiet=quiet)  # while the apiserver still answers: kubelet stops its pods first
        self._stop_all(list(reversed(COMPONENTS)))
        if not quiet and pids:
            self.progress(f"stopped {', '.join(reversed([n for n in COMPONENTS if n in pids]))}")
        if not keep_data and self.workdir.exists() and (self.state_file.exists() or (self.workdir / "pki").exists()):
            shutil.rmtree(self.workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------- kind / existing
def kind_cluster(kubeconfig: Path, progress: Progress = _quiet) -> tuple[Cluster, bool]:
    """The kind cluster named langflow-platform (created from tools/kind-config.yaml when absent).
    Returns (cluster, created) so the caller can delete what it created."""
    kind = tool("kind")
    existing = subprocess.run([kind, "get", "clusters"], capture_output=True, text=True, timeout=60).stdout.split()
    created = KIND_NAME not in existing
    if created:
        progress(f"kind: creating cluster {KIND_NAME} from {KIND_CONFIG} (needs Docker)")
        subprocess.run(
            [kind, "create", "cluster", "--name", KIND_NAME, "--config", str(KIND_CONFIG), "--wait", "120s"],
            check=True,
            timeout=600,
        )
    cfg = subprocess.run(
        [kind, "get", "kubeconfig", "--name", KIND_NAME], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    kubeconfig.write_text(cfg)
    return Cluster("kind", kubeconfig), created


def delete_kind_cluster() -> None:
    subprocess.run([tool("kind"), "delete", "cluster", "--name", KIND_NAME], check=False, timeout=300)


def existing_cluster(kubeconfig: str | os.PathLike[str] | None = None) -> Cluster:
    path = Path(kubeconfig or os.environ.get("KUBECONFIG") or Path.home() / ".kube" / "config").expanduser()
    if not path.exists():
        raise ClusterError(f"--cluster existing: kubeconfig {path} does not exist (set KUBECONFIG)")
    return Cluster("existing", path)


@contextlib.contextmanager
def cluster_for(
    kind: str, *, kubeconfig: str | None = None, workdir: Path | None = None, progress: Progress = _quiet
) -> Iterator[Cluster]:
    """A cluster of the requested kind for the duration of the block; what the block started, it stops."""
    if kind == "local":
        tmp = Path(tempfile.mkdtemp(prefix="lfp-cluster-")) if workdir is None else workdir
        local = LocalCluster(tmp, progress=progress)
        try:
            yield local.up()
        finally:
            local.down(quiet=True)
            shutil.rmtree(tmp, ignore_errors=True)
    elif kind == "kind":
        with tempfile.TemporaryDirectory(prefix="lfp-kind-") as tmp:
            cluster, created = kind_cluster(Path(tmp) / "kubeconfig", progress)
            try:
                yield cluster
            finally:
                if created:
                    delete_kind_cluster()
    elif kind == "existing":
        yield existing_cluster(kubeconfig)
    else:
        raise ValueError(f"unknown cluster kind {kind!r} (local|kind|existing)")


# ---------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"state directory (default {DEFAULT_DIR})")
    parser.add_argument("--nodes", type=int, default=6, help="number of kwok nodes (spread over two zones)")
    parser.add_argument(
        "--no-crds", action="store_true", help="do not install the KEDA/cert-manager/CNPG/Prometheus CRDs"
    )
    parser.add_argument(
        "--no-real-node", action="store_true", help="kwok nodes only (no kubelet/containerd, no images to build)"
    )
    args = parser.parse_args(argv)
    say: Progress = lambda m: print(f"cluster: {m}", flush=True)  # noqa: E731
    local = LocalCluster(args.dir, nodes=args.nodes, progress=say, real_node=not args.no_real_node)
    if args.action == "up":
        cluster = local.up()
        if not args.no_crds:
            say("installing CRDs: " + ", ".join(CRD_DIRS))
            cluster.install_crds()
        print(f"\nexport KUBECONFIG={local.kubeconfig}\nkubectl get nodes -L topology.kubernetes.io/zone")
        print("stop it with: make cluster-down")
    elif args.action == "down":
        if not local.state_file.exists():
            say(f"no local cluster in {args.dir}")
        local.down()
    else:
        state = local._state()
        say(f"{'running' if local.running() else 'not running'}; state {json.dumps(state)}")
        return 0 if local.running() else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
