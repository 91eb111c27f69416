"""policy: the security and reliability rules every workload of every profile must meet, read from the rendered
manifests (each test lists every violation as "profile: Kind/name container: reason").

- Pod Security "restricted": non-root, no privilege escalation, capabilities drop ALL (add at most
  NET_BIND_SERVICE), seccomp RuntimeDefault, no host namespaces/paths/ports, read-only root filesystem with
  the paths the process writes (HOME, TMPDIR, LANGFLOW_CONFIG_DIR, PGDATA, /tmp for Langflow) on writable mounts,
  every emptyDir bounded by a sizeLimit;
- requests and limits (cpu, memory, ephemeral-storage) on every container, the ephemeral-storage limits of a
  pod's containers covering its disk-backed emptyDirs; readiness and liveness probes on long-running ones;
- PodDisruptionBudgets for every workload that may run 2+ replicas (IDE, runtime, HA data), keeping at least
  50 % of the IDE and runtime;
- selector labels on pod templates; no `latest` (or untagged) image;
- `enableServiceLinks: false` on Langflow pods (service links inject LANGFLOW_PORT=tcp://... and break it);
- one ServiceAccount per component, its token mounted only when RBAC in the release grants it something;
- no secret in a ConfigMap, an env literal or a chart/profile default;
- StatefulSet PVCs retained on delete (persistentVolumeClaimRetentionPolicy.whenDeleted: Retain).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import CHARTS, profile_file, profiles

pytestmark = pytest.mark.policy

Obj = dict[str, Any]
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
LANGFLOW_COMPONENTS = {"ide", "runtime"}
WRITABLE_ENV = ("HOME", "TMPDIR", "LANGFLOW_CONFIG_DIR", "PGDATA", "XDG_CACHE_HOME", "RABBITMQ_MNESIA_BASE")
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIALS?|COOKIE)$", re.I)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:(?!\$\()[^@\s/]+@", re.I)
SECRET_IN_TEXT = re.compile(
    r"(?im)^\s*(?:[\w.-]*(?:password|passwd|api[_-]?key|secret[_-]?key|token)|requirepass|masterauth"
    r"|sentinel\s+auth-pass\s+\S+)\s*[:= ]\s*['\"]?(?!\$|\{\{|<|\s*$)[^\s'\"]{3,}"
)


def where(manifest: helm.Manifest, obj: Obj, extra: str = "") -> str:
    return f"{manifest.source}: {obj['kind']}/{obj['metadata']['name']}{' ' + extra if extra else ''}"


def pod_template(obj: Obj) -> Obj:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def pod_spec(obj: Obj) -> Obj:
    return pod_template(obj)["spec"]


def containers(spec: Obj, *, init: bool = True) -> Iterator[tuple[str, Obj]]:
    for c in spec.get("containers") or []:
        yield "container", c
    if init:
        for c in spec.get("initContainers") or []:
            # native sidecars (restartPolicy Always) are long-running containers
            yield ("container" if c.get("restartPolicy") == "Always" else "initContainer"), c


def component(obj: Obj) -> str:
    labels = pod_template(obj).get("metadata", {}).get("labels", {}) if "spec" in obj else {}
    return labels.get("app.kubernetes.io/name") or obj["metadata"].get("labels", {}).get("app.kubernetes.io/name", "")


def is_langflow(obj: Obj) -> bool:
    images = [c.get("image", "") for _, c in containers(pod_spec(obj))]
    return component(obj) in LANGFLOW_COMPONENTS or any("langflow" in i.split("/")[-1] for i in images)


def assert_none(violations: list[str], what: str) -> None:
    assert not violations, f"{len(violations)} {what}:\n" + "\n".join(violations)


# --- Pod Security "restricted" -------------------------------------------------------------------------------


def check_pod_security_restricted(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        spec = pod_spec(w)
        psc = spec.get("securityContext") or {}
        for host in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(host) is True:
                bad.append(where(manifest, w, f"{host}: true"))
        for v in spec.get("volumes") or []:
            if "hostPath" in v:
                bad.append(where(manifest, w, f"volume {v['name']}: hostPath"))
        if psc.get("runAsUser") == 0:
            bad.append(where(manifest, w, "pod runAsUser 0"))
        for kind, c in containers(spec):
            csc = c.get("securityContext") or {}
            at = f"{kind} {c['name']}"
            if csc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                bad.append(where(manifest, w, f"{at}: runAsNonRoot is not true"))
            if csc.get("runAsUser", psc.get("runAsUser")) == 0:
                bad.append(where(manifest, w, f"{at}: runAsUser 0"))
            seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                bad.append(where(manifest, w, f"{at}: seccompProfile.type is {seccomp!r}, want RuntimeDefault"))
            if csc.get("allowPrivilegeEscalation") is not False:
                bad.append(where(manifest, w, f"{at}: allowPrivilegeEscalation is not false"))
            if csc.get("privileged") is True:
                bad.append(where(manifest, w, f"{at}: privileged"))
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []):
                bad.append(where(manifest, w, f"{at}: capabilities.drop lacks ALL"))
            if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
                bad.append(where(manifest, w, f"{at}: capabilities.add {caps['add']}"))
            if csc.get("readOnlyRootFilesystem") is not True:
                bad.append(where(manifest, w, f"{at}: readOnlyRootFilesystem is not true"))
            for p in c.get("ports") or []:
                if p.get("hostPort"):
                    bad.append(where(manifest, w, f"{at}: hostPort {p['hostPort']}"))
    return bad


def writable_volumes(w: Obj) -> set[str]:
    spec = pod_spec(w)
    names = {
        v["name"] for v in spec.get("volumes") or [] if {"emptyDir", "persistentVolumeClaim", "ephemeral"} & set(v)
    }
    if w["kind"] == "StatefulSet":
        names |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []}
    return names


def check_writable_paths_are_explicit_mounts(manifest: helm.Manifest) -> list[str]:
    """With a read-only root, every path a process writes must be a writable mount the chart declares."""
    bad: list[str] = []
    for w in manifest.workloads():
        spec = pod_spec(w)
        declared = {v["name"] for v in spec.get("volumes") or []}
        if w["kind"] == "StatefulSet":
            declared |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates") or []}
        writable = writable_volumes(w)
        for kind, c in containers(spec):
            at = f"{kind} {c['name']}"
            mounts = c.get("volumeMounts") or []
            for m in mounts:
                if m["name"] not in declared:
                    bad.append(where(manifest, w, f"{at}: mounts undeclared volume {m['name']}"))
            rw = [m["mountPath"].rstrip("/") or "/" for m in mounts if m["name"] in writable and not m.get("readOnly")]

            def is_writable(path: str, rw: list[str] = rw) -> bool:
                return any(path == p or path.startswith(p + "/") for p in rw)

            for e in c.get("env") or []:
                value = e.get("value")
                literal_path = e["name"] in WRITABLE_ENV and isinstance(value, str) and value.startswith("/")
                if literal_path and not is_writable(value.rstrip("/")):
                    bad.append(where(manifest, w, f"{at}: {e['name']}={value} is not on a writable mount"))
            if kind == "container" and is_langflow(w) and not is_writable("/tmp"):
                bad.append(where(manifest, w, f"{at}: Langflow writes /tmp, which is not a writable mount"))
    return bad


def check_emptydirs_have_size_limits(manifest: helm.Manifest) -> list[str]:
    """With read-only root filesystems, emptyDirs are a pod's only scratch space: each one is bounded, so the
    node's ephemeral storage cannot be filled by one pod."""
    bad: list[str] = []
    for w in manifest.workloads():
        for v in pod_spec(w).get("volumes") or []:
            if "emptyDir" in v and not (v["emptyDir"] or {}).get("sizeLimit"):
                bad.append(where(manifest, w, f"emptyDir {v['name']} has no sizeLimit"))
    return bad


# --- resources, probes, PDBs -----------------------------------------------------------------------------------


def check_ephemeral_storage_covers_emptydirs(manifest: helm.Manifest) -> list[str]:
    """The kubelet evicts a pod whose emptyDirs and logs pass the sum of its containers' ephemeral-storage
    limits: that sum must cover the disk-backed emptyDirs' sizeLimits, or a volume is cut short of its own limit."""
    from kubernetes.utils import parse_quantity

    bad: list[str] = []
    for w in manifest.workloads():
        spec = pod_spec(w)
        dirs = [
            v for v in spec.get("volumes") or [] if "emptyDir" in v and (v["emptyDir"] or {}).get("medium") != "Memory"
        ]
        if not dirs:
            continue
        unbounded = [v["name"] for v in dirs if not (v["emptyDir"] or {}).get("sizeLimit")]
        volumes = sum(parse_quantity(v["emptyDir"]["sizeLimit"]) for v in dirs if v["name"] not in unbounded)
        limits = sum(
            parse_quantity(((c.get("resources") or {}).get("limits") or {}).get("ephemeral-storage", 0))
            for _, c in containers(spec, init=False)
        )
        if unbounded or volumes > limits:
            sizes = ", ".join(f"{v['name']}={(v['emptyDir'] or {}).get('sizeLimit', 'unbounded')}" for v in dirs)
            bad.append(
                where(manifest, w, f"emptyDirs {sizes} exceed the containers' ephemeral-storage limits ({limits})")
            )
    return bad


def check_resources_requests_and_limits(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        for kind, c in containers(pod_spec(w)):
            r = c.get("resources") or {}
            for section in ("requests", "limits"):
                for res in ("cpu", "memory", "ephemeral-storage"):
                    if not (r.get(section) or {}).get(res):
                        bad.append(where(manifest, w, f"{kind} {c['name']}: no {section}.{res}"))
    for cluster in manifest.of_kind("Cluster"):  # CloudNativePG: the operator makes the pods from spec.resources
        r = cluster["spec"].get("resources") or {}
        for section in ("requests", "limits"):
            if not (r.get(section) or {}).get("memory"):
                bad.append(where(manifest, cluster, f"spec.resources.{section}.memory missing"))
    for pooler in manifest.of_kind("Pooler"):
        for c in ((pooler["spec"].get("template") or {}).get("spec") or {}).get("containers") or []:
            if not ((c.get("resources") or {}).get("limits") or {}).get("memory"):
                bad.append(where(manifest, pooler, f"container {c['name']}: no limits.memory"))
    return bad


def check_probes_on_long_running_containers(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        if w["kind"] not in LONG_RUNNING:
            continue
        for kind, c in containers(pod_spec(w)):
            if kind != "container":
                continue
            for probe in ("readinessProbe", "livenessProbe"):
                if not c.get(probe):
                    bad.append(where(manifest, w, f"container {c['name']}: no {probe}"))
    return bad


def scalers_of(manifest: helm.Manifest, w: Obj) -> tuple[int, int]:
    """(min, max) replicas of a workload: from its HPA or ScaledObject, else spec.replicas (default 1)."""
    name, kind = w["metadata"]["name"], w["kind"]
    for hpa in manifest.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] == name and ref["kind"] == kind:
            return int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
    for so in manifest.of_kind("ScaledObject"):
        ref = so["spec"]["scaleTargetRef"]
        if ref["name"] == name and ref.get("kind", "Deployment") == kind:
            return int(so["spec"].get("minReplicaCount", 0)), int(so["spec"].get("maxReplicaCount", 100))
    replicas = int(w["spec"].get("replicas", 1))
    return replicas, replicas


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    match = selector.get("matchLabels") or {}
    if not match and not selector.get("matchExpressions"):
        return False
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for e in selector.get("matchExpressions") or []:
        value, op = labels.get(e["key"]), e["operator"]
        if (
            (op == "In" and value not in e["values"])
            or (op == "NotIn" and value in e["values"])
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def keeps_half(pdb: Obj, replicas: int) -> bool:
    spec = pdb["spec"]
    if "minAvailable" in spec:
        v = spec["minAvailable"]
        return int(str(v).rstrip("%")) >= 50 if isinstance(v, str) and v.endswith("%") else int(v) * 2 >= replicas
    v = spec.get("maxUnavailable", 1)
    return int(str(v).rstrip("%")) <= 50 if isinstance(v, str) and v.endswith("%") else int(v) * 2 <= replicas


def check_pdbs_protect_replicated_workloads(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    pdbs = manifest.of_kind("PodDisruptionBudget")
    for w in manifest.workloads():
        if w["kind"] not in LONG_RUNNING - {"DaemonSet"}:
            continue
        low, high = scalers_of(manifest, w)
        critical = component(w) in LANGFLOW_COMPONENTS
        if high < 2:  # a single replica: a PDB would only block node drains
            continue
        labels = pod_template(w).get("metadata", {}).get("labels", {})
        covering = [p for p in pdbs if selects(p["spec"].get("selector") or {}, labels)]
        if not covering:
            bad.append(where(manifest, w, f"replicas {low}-{high}: no PodDisruptionBudget selects its pods"))
            continue
        if critical and not all(keeps_half(p, max(low, 2)) for p in covering):
            bad.append(where(manifest, w, f"PDB {[p['spec'] for p in covering]} keeps less than 50 %"))
    for cluster in manifest.of_kind("Cluster"):
        if int(cluster["spec"].get("instances", 1)) > 1 and cluster["spec"].get("enablePDB") is False:
            bad.append(where(manifest, cluster, "HA PostgreSQL with enablePDB: false"))
    for pooler in manifest.of_kind("Pooler"):
        if int(pooler["spec"].get("instances", 1)) > 1:
            labels = {"cnpg.io/poolerName": pooler["metadata"]["name"]}
            if not any(selects(p["spec"].get("selector") or {}, labels) for p in pdbs):
                bad.append(where(manifest, pooler, "replicated pooler without a PodDisruptionBudget"))
    return bad


# --- labels, images ----------------------------------------------------------------------------------------------


def check_pod_templates_carry_selector_labels(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        labels = pod_template(w).get("metadata", {}).get("labels", {})
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance"):
            if key not in labels:
                bad.append(where(manifest, w, f"pod template lacks label {key}"))
        selector = (w["spec"].get("selector") or {}) if w["kind"] in LONG_RUNNING else None
        if selector is not None and not selects(selector, labels):
            bad.append(where(manifest, w, "selector does not select its own pod template"))
    return bad


def image_problem(image: str) -> str | None:
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image} has no tag"
    if last.rsplit(":", 1)[1] in ("latest", ""):
        return f"image {image} uses latest"
    return None


def check_no_latest_or_untagged_images(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        for kind, c in containers(pod_spec(w)):
            if problem := image_problem(c.get("image", "")):
                bad.append(where(manifest, w, f"{kind} {c['name']}: {problem}"))
    for cluster in manifest.of_kind("Cluster"):
        if (image := cluster["spec"].get("imageName")) and (problem := image_problem(image)):
            bad.append(where(manifest, cluster, problem))
    return bad


# --- Langflow pods, service accounts ---------------------------------------------------------------------------


def check_service_links_off_on_langflow_pods(manifest: helm.Manifest) -> list[str]:
    return [
        where(manifest, w, "enableServiceLinks is not false")
        for w in manifest.workloads()
        if is_langflow(w) and pod_spec(w).get("enableServiceLinks") is not False
    ]


def bound_accounts(manifest: helm.Manifest) -> set[str]:
    """ServiceAccounts that a (Cluster)RoleBinding of the release grants something."""
    out: set[str] = set()
    for b in manifest.of_kind("RoleBinding") + manifest.of_kind("ClusterRoleBinding"):
        for s in b.get("subjects") or []:
            if s.get("kind") == "ServiceAccount":
                out.add(s["name"])
    return out


def check_one_service_account_per_component(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    accounts = {sa["metadata"]["name"]: sa for sa in manifest.of_kind("ServiceAccount")}
    bound = bound_accounts(manifest)
    users: dict[str, set[str]] = {}
    for w in manifest.workloads():
        spec = pod_spec(w)
        name = spec.get("serviceAccountName") or "default"
        if name == "default":
            bad.append(where(manifest, w, "runs as the namespace's default ServiceAccount"))
            continue
        if name not in accounts:
            bad.append(where(manifest, w, f"ServiceAccount {name} is not part of the release"))
            continue
        users.setdefault(name, set()).add(component(w))
        sa_mount = accounts[name].get("automountServiceAccountToken", True)
        mounted = spec.get("automountServiceAccountToken", sa_mount)
        if mounted is not False and name not in bound:
            bad.append(where(manifest, w, f"mounts the API token of {name}, which no RoleBinding grants anything"))
    for name, comps in users.items():
        if len(comps) > 1:
            bad.append(f"{manifest.source}: ServiceAccount {name} shared by components {sorted(comps)}")
    for name, sa in accounts.items():
        if sa.get("automountServiceAccountToken", True) is not False and name not in bound:
            bad.append(where(manifest, sa, "automountServiceAccountToken is not false and it has no RBAC"))
    return bad


# --- secrets -----------------------------------------------------------------------------------------------------


def check_no_secrets_in_configmaps_or_env_literals(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for w in manifest.workloads():
        for kind, c in containers(pod_spec(w)):
            for e in c.get("env") or []:
                value = e.get("value")
                if not isinstance(value, str) or not value:
                    continue
                if SECRET_NAME.search(e["name"]) and not value.startswith("/"):
                    bad.append(
                        where(manifest, w, f"{kind} {c['name']}: env {e['name']} is a literal, use secretKeyRef")
                    )
                elif URL_WITH_PASSWORD.search(value):
                    bad.append(where(manifest, w, f"{kind} {c['name']}: env {e['name']} has a password in its URL"))
            for a in [*(c.get("args") or []), *(c.get("command") or [])]:
                if isinstance(a, str) and URL_WITH_PASSWORD.search(a):
                    bad.append(where(manifest, w, f"{kind} {c['name']}: a password in its command line"))
    for cm in manifest.of_kind("ConfigMap"):
        for key, value in (cm.get("data") or {}).items():
            if SECRET_NAME.search(key.replace("-", "_").replace(".", "_")):
                bad.append(where(manifest, cm, f"key {key} looks like a secret"))
            elif found := URL_WITH_PASSWORD.search(str(value)) or SECRET_IN_TEXT.search(str(value)):
                bad.append(where(manifest, cm, f"key {key} holds a credential ({found[0].strip()[:40]}...)"))
    return bad


def secret_defaults(values: Any, path: str = "") -> Iterator[str]:
    if isinstance(values, dict):
        for k, v in values.items():
            p = f"{path}.{k}" if path else str(k)
            flat = str(k).lower().replace("_", "").replace("-", "")
            secretish = flat.endswith(("password", "passwd", "apikey", "token", "secretkey", "cookie"))
            if secretish and isinstance(v, str) and v:
                yield p
            yield from secret_defaults(v, p)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            yield from secret_defaults(v, f"{path}[{i}]")


@pytest.mark.parametrize(
    "values_file",
    [*sorted(CHARTS.glob("langflow-*/values.yaml")), *[profile_file(p) for p in profiles()]],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_no_secret_values_in_defaults(values_file: Path) -> None:
    found = list(secret_defaults(yaml.safe_load(values_file.read_text()) or {}))
    assert not found, f"{values_file}: secrets set in values (use existingSecret or a generated Secret): {found}"


# --- storage -----------------------------------------------------------------------------------------------------


def check_statefulset_pvcs_retained(manifest: helm.Manifest) -> list[str]:
    bad: list[str] = []
    for sts in manifest.of_kind("StatefulSet"):
        if not sts["spec"].get("volumeClaimTemplates"):
            continue
        policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy")
        if not policy:
            bad.append(where(manifest, sts, "no persistentVolumeClaimRetentionPolicy"))
        elif policy.get("whenDeleted") != "Retain":
            bad.append(where(manifest, sts, f"whenDeleted is {policy.get('whenDeleted')!r}, want Retain"))
    return bad


def test_policy_checks_see_workloads(rendered_profiles: dict[str, helm.Manifest]) -> None:
    """The rules above are vacuous on an empty render: every profile must render long-running workloads."""
    empty = [p for p, m in rendered_profiles.items() if not any(w["kind"] in LONG_RUNNING for w in m.workloads())]
    assert not empty, f"profiles rendering no Deployment/StatefulSet: {empty}"


# --- the rules, applied to every profile -------------------------------------------------------------------

CHECKS = {
    "pod_security_restricted": (check_pod_security_restricted, "Pod Security 'restricted' violations"),
    "writable_paths_are_explicit_mounts": (
        check_writable_paths_are_explicit_mounts,
        "writable paths without a writable mount",
    ),
    "emptydirs_have_size_limits": (check_emptydirs_have_size_limits, "unbounded emptyDir volumes"),
    "resources_requests_and_limits": (check_resources_requests_and_limits, "containers without requests and limits"),
    "ephemeral_storage_covers_emptydirs": (
        check_ephemeral_storage_covers_emptydirs,
        "pods the kubelet would evict before their volumes are full",
    ),
    "probes_on_long_running_containers": (
        check_probes_on_long_running_containers,
        "long-running containers without probes",
    ),
    "pdbs_protect_replicated_workloads": (
        check_pdbs_protect_replicated_workloads,
        "workloads without the PodDisruptionBudget they need",
    ),
    "pod_templates_carry_selector_labels": (check_pod_templates_carry_selector_labels, "label problems"),
    "no_latest_or_untagged_images": (check_no_latest_or_untagged_images, "unpinned images"),
    "service_links_off_on_langflow_pods": (
        check_service_links_off_on_langflow_pods,
        "Langflow pods with service links",
    ),
    "one_service_account_per_component": (check_one_service_account_per_component, "ServiceAccount problems"),
    "no_secrets_in_configmaps_or_env_literals": (
        check_no_secrets_in_configmaps_or_env_literals,
        "secrets outside Secrets",
    ),
    "statefulset_pvcs_retained": (check_statefulset_pvcs_retained, "StatefulSets that may lose their volumes"),
}


@pytest.mark.parametrize("rule", CHECKS)
def test_rule(rule: str, manifest: helm.Manifest) -> None:
    check, what = CHECKS[rule]
    assert_none(check(manifest), what)


INSECURE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: lf-ide}
spec:
  replicas: 3
  selector: {matchLabels: {app.kubernetes.io/name: ide, app.kubernetes.io/instance: lf}}
  template:
    metadata: {labels: {app.kubernetes.io/name: other}}
    spec:
      hostNetwork: true
      volumes: [{name: host, hostPath: {path: /var}}, {name: scratch, emptyDir: {}}]
      containers:
        - name: langflow
          image: langflowai/langflow:latest
          env:
            - {name: LANGFLOW_SUPERUSER_PASSWORD, value: hunter2}
            - {name: LANGFLOW_DATABASE_URL, value: "postgresql://langflow:hunter2@db:5432/langflow"}
            - {name: LANGFLOW_CONFIG_DIR, value: /app/data}
          securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}
          volumeMounts: [{name: missing, mountPath: /tmp}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: lf-database}
spec:
  replicas: 3
  selector: {matchLabels: {app.kubernetes.io/name: database, app.kubernetes.io/instance: lf}}
  serviceName: lf-database
  template:
    metadata: {labels: {app.kubernetes.io/name: database, app.kubernetes.io/instance: lf}}
    spec:
      serviceAccountName: lf-shared
      containers:
        - {name: postgres, image: postgres, resources: {requests: {cpu: 1, memory: 1Gi}}}
  volumeClaimTemplates: [{metadata: {name: data}, spec: {accessModes: [ReadWriteOnce]}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lf-runtime}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: runtime, app.kubernetes.io/instance: lf}}
  template:
    metadata: {labels: {app.kubernetes.io/name: runtime, app.kubernetes.io/instance: lf}}
    spec:
      serviceAccountName: lf-shared
      containers: [{name: worker, image: example/worker:1.0}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: lf-shared}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: lf-broker-config}
data:
  redis.conf: |
    requirepass s3cr3tvalue
  DB_PASSWORD: x
"""


@pytest.mark.parametrize("rule", CHECKS)
def test_rule_catches_an_insecure_release(rule: str) -> None:
    """Each rule reports the deliberately insecure release above: the checks are not vacuous."""
    objects = [d for d in yaml.safe_load_all(INSECURE) if d]
    check, what = CHECKS[rule]
    found = check(helm.Manifest(objects, source="insecure sample"))
    assert found, f"rule {rule} ({what}) found nothing in a release built to break it"
