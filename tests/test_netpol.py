"""policy: the NetworkPolicies a profile renders give exactly the intended reachability, proven with a real policy
analyser (network-config-analyzer, `nca`, in its own venv under .tools) over a model cluster:

- the release's pods (each workload as one pod with its template's labels and ports; CloudNativePG instances and
  poolers modelled from the Cluster/Pooler objects with the labels the operator gives them);
- an ingress controller (namespace ingress-nginx), Prometheus (namespace monitoring), CoreDNS (kube-system),
  the KEDA operator (keda), the CloudNativePG operator (cnpg-system) and an unrelated pod (namespace intruder),
  labelled as those projects label them.

Allowed: ingress controller -> IDE; IDE and runtime -> database, broker, vector store; Prometheus -> every
metrics port; every release pod -> DNS; KEDA -> the queue; CloudNativePG operator -> instances (status port);
pooler -> instances. Denied: everything else inside the namespace (data tier to apps, app
tier to metrics-only ports, ingress controller to anything but the IDE), the intruder to every release pod,
the internet to every release pod, and release pods to the intruder.
At the cluster's edge (boundary_expectations): HTTPS to the internet only from the IDE, the runtime, the
backup/restore Jobs and WAL-archiving CloudNativePG instances; the API server only from pods that hold a
ServiceAccount token; every external service a pod dials (read from its env: RDS, ElastiCache, an external
RabbitMQ or vector store) on its port and no other; the IDE from a load balancer's CIDRs when the profile names
them (ALB target-type ip).
The resulting matrix per profile is written to reports/netpol-<profile>.txt.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import REPORTS, profile_file, profiles, tool

pytestmark = pytest.mark.policy

NAMESPACE = "langflow"
Obj = dict[str, Any]

# The rest of the model cluster: (namespace, name, labels, ports)
PEERS: dict[str, tuple[str, str, dict[str, str], list[Obj]]] = {
    "ingress": (
        "ingress-nginx",
        "ingress-nginx-controller",
        {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/component": "controller"},
        [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
    ),
    "prometheus": (
        "monitoring",
        "prometheus-k8s",
        {"app.kubernetes.io/name": "prometheus", "prometheus": "k8s"},
        [{"containerPort": 9090, "name": "web"}],
    ),
    "dns": (
        "kube-system",
        "coredns",
        {"k8s-app": "kube-dns"},
        [{"containerPort": 53, "protocol": "UDP", "name": "dns"}, {"containerPort": 53, "name": "dns-tcp"}],
    ),
    "intruder": ("intruder", "intruder", {"app": "intruder"}, [{"containerPort": 8080, "name": "http"}]),
    "keda": (
        "keda",
        "keda-operator",
        {"app.kubernetes.io/name": "keda-operator", "app": "keda-operator"},
        [{"containerPort": 8080, "name": "metrics"}],
    ),
    "cnpg-operator": (
        "cnpg-system",
        "cnpg-controller-manager",
        {"app.kubernetes.io/name": "cloudnative-pg"},
        [{"containerPort": 9443, "name": "webhook-server"}],
    ),
}
# addresses outside the cluster: the internet, and one inside a VPC (where RDS, ElastiCache, Amazon MQ, a managed
# vector store or an ALB's nodes live: inside 10.0.0.0/16, the aws profile's VPC, and in the private ranges)
PUBLIC = "203.0.113.7"
VPC = "10.0.3.4"
CONSUMERS = ("ide", "runtime")
DATA = ("database", "broker", "vectorstore")
METRICS_PORT = re.compile(r"(metrics|prometheus|exporter)", re.I)
# client ports of the data tier (PostgreSQL/PgBouncer, AMQP, Redis, Sentinel, Qdrant HTTP/gRPC, Weaviate
# HTTP/gRPC, Milvus); other non-metrics ports of data pods (Erlang distribution, epmd, Raft/p2p) are
# cluster-internal and closed to the apps
CLIENT_PORTS = {5432, 5672, 6379, 26379, 6333, 6334, 8080, 50051, 19530}


@dataclass
class Pod:
    namespace: str
    name: str
    labels: dict[str, str]
    ports: list[Obj] = field(default_factory=list)
    component: str = ""
    fronted: bool = False  # behind the component's main Service (<release>-<component>), the one clients use
    api: bool = False  # holds a ServiceAccount token: it talks to the API server
    internet: bool = False  # archives WAL to object storage (CloudNativePG instances with barmanObjectStore)
    env: dict[str, str] = field(default_factory=dict)  # literal env values of all its containers

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def as_object(self) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": self.labels},
            "spec": {"containers": [{"name": "main", "image": "model:1", "ports": self.ports}]},
            "status": {"podIP": "10.0.0.1"},
        }

    def port_numbers(self, pattern: re.Pattern[str] | None = None) -> set[int]:
        return {p["containerPort"] for p in self.ports if pattern is None or pattern.search(p.get("name", ""))}


def pod_template(obj: Obj) -> Obj:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def release_pods(manifest: helm.Manifest) -> list[Pod]:
    pods: list[Pod] = []
    for w in manifest.workloads():
        template = pod_template(w)
        labels = dict(template.get("metadata", {}).get("labels") or {})
        containers = (template["spec"].get("containers") or []) + (template["spec"].get("initContainers") or [])
        ports = [copy.deepcopy(p) for c in containers for p in c.get("ports") or []]
        comp = labels.get("app.kubernetes.io/name", "")
        front = [
            svc
            for svc in manifest.of_kind("Service")
            if svc["metadata"]["name"] == f"{labels.get('app.kubernetes.io/instance')}-{comp}"
            and (svc["spec"].get("selector") or {})
            and all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
        ]
        env = {e["name"]: e["value"] for c in containers for e in c.get("env") or [] if "value" in e}
        api = bool(template["spec"].get("automountServiceAccountToken", True))
        pods.append(Pod(NAMESPACE, w["metadata"]["name"], labels, ports, comp, bool(front), api, env=env))
    # CloudNativePG instances, labelled as the operator does; behind a Pooler they are the pooler's backends
    instance_role = "database-instance" if manifest.of_kind("Pooler") else "database"
    for cluster in manifest.of_kind("Cluster"):
        name = cluster["metadata"]["name"]
        labels = {"cnpg.io/cluster": name, "cnpg.io/podRole": "instance", "cnpg.io/instanceRole": "primary"}
        labels["role"] = "primary"
        ports = [
            {"containerPort": 5432, "name": "postgresql"},
            {"containerPort": 9187, "name": "metrics"},
            {"containerPort": 8000, "name": "status"},
        ]
        archives = bool((cluster["spec"].get("backup") or {}).get("barmanObjectStore"))
        # the instance manager watches its Cluster through the API
        pods.append(Pod(NAMESPACE, f"{name}-1", labels, ports, instance_role, api=True, internet=archives))
    for pooler in manifest.of_kind("Pooler"):
        name = pooler["metadata"]["name"]
        labels = {"cnpg.io/poolerName": name, "cnpg.io/podRole": "pooler"}
        labels.update((pooler["spec"].get("template") or {}).get("metadata", {}).get("labels") or {})
        ports = [{"containerPort": 5432, "name": "pgbouncer"}, {"containerPort": 9127, "name": "metrics"}]
        pods.append(Pod(NAMESPACE, name, labels, ports, "database"))
    return pods


def model_cluster(manifest: helm.Manifest) -> tuple[list[Pod], list[Obj]]:
    pods = release_pods(manifest)
    peers = [Pod(ns, name, labels, ports, role) for role, (ns, name, labels, ports) in PEERS.items()]
    namespaces = sorted({NAMESPACE, *(p.namespace for p in peers)})
    objects: list[Obj] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
        }
        for ns in namespaces
    ]
    objects += [p.as_object() for p in pods + peers]
    return pods + peers, objects


CONN = re.compile(r"\{([^}]*)\}")


@dataclass(frozen=True)
class Allowed:
    """What nca says one endpoint may open to another: everything, or (protocol, port) pairs."""

    everything: bool
    ports: frozenset[tuple[str, int]]
    any_port: frozenset[str]  # protocols allowed on every port

    def permits(self, port: int, protocol: str = "TCP") -> bool:
        return self.everything or protocol in self.any_port or (protocol, port) in self.ports


GROUP = re.compile(r"^protocols:(?P<protocols>[A-Z]+(?:,\s*[A-Z]+)*)(?:,dst_ports:(?P<ports>[\d,\-\s]+))?")


def parse_connections(text: str) -> Allowed:
    """nca's connection text: 'All connections', or groups like '{protocols:TCP, UDP,dst_ports:53,5432-5433}'."""
    if text.strip() == "All connections":
        return Allowed(True, frozenset(), frozenset())
    ports: set[tuple[str, int]] = set()
    any_port: set[str] = set()
    for group in CONN.findall(text):
        m = GROUP.match(group.strip())
        assert m, f"cannot read nca's connection group {group!r}"
        protocols = [p.strip() for p in m["protocols"].split(",")]
        if not m["ports"]:
            any_port.update(protocols)
            continue
        for part in m["ports"].replace(" ", "").split(","):
            if not part:
                continue
            low, _, high = part.partition("-")
            for port in range(int(low), int(high or low) + 1):
                ports.update((proto, port) for proto in protocols)
    return Allowed(False, frozenset(ports), frozenset(any_port))


LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conn>.+)$")


def endpoint(text: str) -> str:
    """'langflow/lf-ide[Pod]' -> 'langflow/lf-ide'; IP ranges stay as they are."""
    return text.split("[", 1)[0]


def analyse(objects: list[Obj], policies: list[Obj]) -> dict[tuple[str, str], Allowed]:
    with tempfile.TemporaryDirectory(prefix="nca-") as tmp:
        resources, netpols = Path(tmp) / "resources.yaml", Path(tmp) / "policies.yaml"
        resources.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        netpols.write_text(yaml.safe_dump_all(policies, sort_keys=False) if policies else "")
        cmd = [tool("nca"), "--connectivity", str(netpols), "--resource_list", str(resources)]
        cmd += ["--output_format", "txt_no_fw_rules"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    matrix: dict[tuple[str, str], Allowed] = {}
    for line in proc.stdout.splitlines():
        if m := LINE.match(line.strip()):
            matrix[(endpoint(m["src"]), endpoint(m["dst"]))] = parse_connections(m["conn"])
    assert matrix, f"nca reported no connectivity (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return matrix


def covers(text: str, address: str) -> bool:
    """Does nca's address endpoint ('10.0.0.0/16', '0.0.0.0-9.255.255.255', or a comma list) hold this address?"""
    ip = ipaddress.ip_address(address)
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            low, high = part.split("-", 1)
            if ipaddress.ip_address(low) <= ip <= ipaddress.ip_address(high):
                return True
        elif re.match(r"^[0-9.]+(/\d+)?$", part) and ip in ipaddress.ip_network(part, strict=False):
            return True
    return False


def with_address(matrix: dict[tuple[str, str], Allowed], src: str, dst: str) -> Allowed | None:
    """The entry between a pod and an IP address (either side), whatever range nca put the address in."""
    for (s, d), allowed in matrix.items():
        if s == src and not src[0].isdigit() and d[0].isdigit() and covers(d, dst):
            return allowed
        if d == dst and not dst[0].isdigit() and s[0].isdigit() and covers(s, src):
            return allowed
    return None


@dataclass(frozen=True)
class Expectation:
    src: str
    dst: str
    port: int
    protocol: str
    allowed: bool
    why: str


def expectations(pods: list[Pod]) -> list[Expectation]:
    by_role: dict[str, list[Pod]] = {}
    for p in pods:
        by_role.setdefault(p.component, []).append(p)
    release = [p for p in pods if p.namespace == NAMESPACE]
    out: list[Expectation] = []
    ingress, prom, dns, intruder = (by_role[r][0] for r in ("ingress", "prometheus", "dns", "intruder"))
    keda, cnpg = by_role["keda"][0], by_role["cnpg-operator"][0]
    # KEDA's operator measures the queue from its own namespace; CloudNativePG's operator polls each instance
    for broker in (b for b in by_role.get("broker", []) if b.fronted):
        for port in sorted(broker.port_numbers() & {5672, 6379, 26379})[:1]:
            out.append(Expectation(keda.key, broker.key, port, "TCP", True, "KEDA operator -> queue"))
    for instance in (p for p in pods if "cnpg.io/cluster" in p.labels):
        out.append(Expectation(cnpg.key, instance.key, 8000, "TCP", True, "CloudNativePG operator -> instance"))
        for pooler in (p for p in pods if "cnpg.io/poolerName" in p.labels):
            out.append(Expectation(pooler.key, instance.key, 5432, "TCP", True, "pooler -> PostgreSQL"))
    for ide in by_role.get("ide", []):
        for port in ide.port_numbers() - ide.port_numbers(METRICS_PORT):
            out.append(Expectation(ingress.key, ide.key, port, "TCP", True, "ingress controller -> IDE"))
    for consumer in (p for r in CONSUMERS for p in by_role.get(r, [])):
        for data in (p for r in DATA for p in by_role.get(r, [])):
            client = data.port_numbers() & CLIENT_PORTS
            for port in sorted(client):
                out.append(Expectation(consumer.key, data.key, port, "TCP", True, f"{consumer.component} -> data"))
            for port in sorted(data.port_numbers() - client):
                out.append(Expectation(consumer.key, data.key, port, "TCP", False, "metrics/internal port of data"))
    for data in (p for r in DATA for p in by_role.get(r, [])):
        for other in (p for r in DATA for p in by_role.get(r, []) if r != data.component):
            for port in sorted(other.port_numbers() & CLIENT_PORTS):
                out.append(Expectation(data.key, other.key, port, "TCP", False, "data components stay apart"))
    scrapers = [prom] + [p for p in release if p.component == "monitoring" and "prometheus" in p.name]
    for p in release:
        out.append(Expectation(p.key, dns.key, 53, "UDP", True, "DNS egress"))
        for port in p.port_numbers(METRICS_PORT):
            for scraper in scrapers:
                if scraper is not p:
                    out.append(Expectation(scraper.key, p.key, port, "TCP", True, "Prometheus -> metrics port"))
        for port in p.port_numbers():
            out.append(Expectation(intruder.key, p.key, port, "TCP", False, "other namespaces are denied"))
            if p.component != "ide" or port in p.port_numbers(METRICS_PORT):
                out.append(Expectation(ingress.key, p.key, port, "TCP", False, "ingress reaches only the IDE"))
            out.append(Expectation(PUBLIC, p.key, port, "TCP", False, "no direct ingress from outside"))
        out.append(Expectation(p.key, intruder.key, 8080, "TCP", False, "no egress to other namespaces"))
    for data in (p for r in DATA for p in by_role.get(r, [])):
        for app in (p for r in CONSUMERS for p in by_role.get(r, [])):
            for port in app.port_numbers():
                out.append(Expectation(data.key, app.key, port, "TCP", False, "data tier does not call the apps"))
    return out


# the API server's address, as the reachability render narrows global.networkPolicy.apiServer.cidrs to it
API_SERVER = "198.51.100.10"
NEEDS_INTERNET = {"ide", "runtime"}  # LLM APIs, object storage
NEEDS_INTERNET_JOBS = {"backup", "restore"}  # dumps to/from object storage


def endpoints(pod: Pod) -> list[tuple[str, int]]:
    """(host, port) of every server a pod dials, read from its env as the chart renders it."""
    out: list[tuple[str, int]] = []
    for host_key, port_key in (("LF_DATABASE_HOST", "LF_DATABASE_PORT"), ("PGHOST", "PGPORT")):
        if host_key in pod.env:
            out.append((pod.env[host_key], int(pod.env.get(port_key) or 5432)))
    for key in ("LF_BROKER_URL", "LF_VECTORSTORE_URL"):
        if url := pod.env.get(key):
            u = urlsplit(url.replace("$(", "").replace(")", ""))
            default = {"amqp": 5672, "amqps": 5671, "redis": 6379, "rediss": 6379, "http": 80, "https": 443}
            out.append((u.hostname or "", u.port or default.get(u.scheme, 443)))
    return out


def boundary_expectations(manifest: helm.Manifest, pods: list[Pod], values: Obj) -> list[Expectation]:
    """Traffic across the cluster's edge: egress to the internet and the API server only for the pods that need it,
    egress to every external service a pod dials (on its port, nothing else), and ingress from a load balancer
    that targets pod IPs when the profile names its CIDRs."""
    in_cluster = {s["metadata"]["name"] for s in manifest.of_kind("Service") if s["spec"].get("type") != "ExternalName"}
    # Services CloudNativePG makes: one per Pooler, and <cluster>-rw/-ro/-r per Cluster
    in_cluster |= {p["metadata"]["name"] for p in manifest.of_kind("Pooler")}
    in_cluster |= {f"{c['metadata']['name']}-{s}" for c in manifest.of_kind("Cluster") for s in ("rw", "ro", "r")}
    out: list[Expectation] = []
    for p in (p for p in pods if p.namespace == NAMESPACE):
        internet = p.internet or p.component in NEEDS_INTERNET
        internet |= p.labels.get("app.kubernetes.io/component") in NEEDS_INTERNET_JOBS
        out.append(Expectation(p.key, PUBLIC, 443, "TCP", internet, "internet (HTTPS) only where needed"))
        out.append(Expectation(p.key, PUBLIC, 6443, "TCP", False, "no other internet port"))
        out.append(Expectation(p.key, API_SERVER, 6443, "TCP", p.api, "API server only with a token"))
        for host, port in endpoints(p):
            if host.split(".")[0] in in_cluster:
                continue
            # an IP literal is itself; AWS's regional API endpoints (sqs.<region>.amazonaws.com) are on the
            # internet; any other name (RDS, ElastiCache, Amazon MQ, a managed vector store) resolves into the VPC
            public = re.fullmatch(r"(sqs|s3)\.[a-z0-9-]+\.amazonaws\.com", host)
            address = host if re.fullmatch(r"[0-9.]+", host) else PUBLIC if public else VPC
            out.append(Expectation(p.key, address, port, "TCP", True, f"external service {host}:{port}"))
            out.append(Expectation(p.key, address, 22, "TCP", False, f"only the port of {host}"))
    lb = (((values.get("global") or {}).get("networkPolicy") or {}).get("ingressController") or {}).get("cidrs")
    for ide in (p for p in pods if p.component == "ide"):
        for port in ide.port_numbers() - ide.port_numbers(METRICS_PORT):
            out.append(Expectation(VPC, ide.key, port, "TCP", bool(lb), "load balancer CIDRs -> IDE"))
    return out


def verdict(matrix: dict[tuple[str, str], Allowed], e: Expectation) -> bool:
    addressed = e.src[0].isdigit() or e.dst[0].isdigit()
    allowed = with_address(matrix, e.src, e.dst) if addressed else matrix.get((e.src, e.dst))
    return bool(allowed and allowed.permits(e.port, e.protocol))


def check_reachability(manifest: helm.Manifest, name: str, values: Obj | None = None) -> tuple[list[str], list[str]]:
    """(violations, the matrix as lines)"""
    pods, objects = model_cluster(manifest)
    policies = manifest.of_kind("NetworkPolicy")
    matrix = analyse(objects, policies)
    lines, bad = [], []
    for e in expectations(pods) + boundary_expectations(manifest, pods, values or {}):
        got = verdict(matrix, e)
        mark = "allow" if got else "deny "
        lines.append(f"{mark} {e.src} -> {e.dst}:{e.port}/{e.protocol}  ({e.why})")
        if got != e.allowed:
            want = "allowed" if e.allowed else "denied"
            bad.append(f"profile {name}: {e.src} -> {e.dst}:{e.port}/{e.protocol} should be {want} ({e.why})")
    return bad, lines


@pytest.fixture(scope="module")
def reachability() -> Iterator[dict[str, tuple[list[str], list[str]]]]:
    """Each profile rendered with the API server's address given (global.networkPolicy.apiServer.cidrs), analysed."""
    results = {}
    REPORTS.mkdir(exist_ok=True)
    narrowed = {"global.networkPolicy.apiServer.cidrs": [f"{API_SERVER}/32"]}
    for name in profiles():
        manifest = helm.render_profile(name, set_values=narrowed)
        values = yaml.safe_load(profile_file(name).read_text()) or {}
        results[name] = check_reachability(manifest, name, values)
        (REPORTS / f"netpol-{name}.txt").write_text("\n".join(sorted(results[name][1])) + "\n")
    yield results


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", profiles())
def test_reachability_matrix(name: str, reachability: dict[str, tuple[list[str], list[str]]]) -> None:
    bad, lines = reachability[name]
    assert lines, f"profile {name}: no pairs to check (no workloads rendered?)"
    assert not bad, f"{len(bad)} of {len(lines)} pairs wrong:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", profiles())
def test_default_deny(name: str, rendered_profiles: dict[str, helm.Manifest]) -> None:
    """A policy selecting every pod of the namespace denies ingress and egress unless another policy allows."""
    deny = [
        p
        for p in rendered_profiles[name].of_kind("NetworkPolicy")
        if not (p["spec"].get("podSelector") or {}).get("matchLabels")
        and not (p["spec"].get("podSelector") or {}).get("matchExpressions")
        and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes") or [])
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, f"profile {name}: no default-deny NetworkPolicy (podSelector {{}}, Ingress+Egress, no rules)"


PLANTED = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-everything, namespace: langflow}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{}]
  egress: [{}]
"""


@pytest.mark.timeout(300)
def test_analyser_flags_an_open_namespace(rendered_profiles: dict[str, helm.Manifest]) -> None:
    """The same matrix over an allow-all policy must report the denied pairs as open: the analysis has teeth."""
    manifest = rendered_profiles["prod"]
    open_ = helm.Manifest(
        [o for o in manifest.objects if o["kind"] != "NetworkPolicy"] + list(yaml.safe_load_all(PLANTED)),
        source="prod with an allow-all policy",
    )
    bad, _ = check_reachability(open_, "prod+allow-all")
    assert any("should be denied" in b and "intruder" in b for b in bad), f"allow-all went unnoticed: {bad[:5]}"
