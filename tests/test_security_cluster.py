"""cluster: least privilege and disruption budgets, proven on the real API server of the cluster fixture
(tests/harness/fixtures.py `kube`: the local control plane with kwok nodes, RBAC authorisation on).

- RBAC: every ServiceAccount of every profile, with the Roles/Bindings the profile renders, may do exactly what
  its rules grant: `kubectl auth can-i --as=system:serviceaccount:<ns>:<sa>` says yes to one verb per granted
  rule and no to sensitive verbs it was not granted (read Secrets, create pods, bind roles, cluster-wide
  lists), and `auth can-i --list` shows no resource beyond its rules.
- PDBs: the prod profile installed with every pod on one node, IDE and runtime at their autoscalers' minimum;
  `kubectl drain` of that node is throttled by the PodDisruptionBudgets (the API refuses an eviction at least
  once) and never leaves fewer than half of the IDE or runtime pods Ready; afterwards all are Ready elsewhere.
"""

from __future__ import annotations

import json
import math
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.harness import helm
from tests.harness.cluster import Cluster
from tests.harness.paths import BAD_VALUES, UMBRELLA, profile_file, profiles, tool

pytestmark = pytest.mark.cluster

RBAC_KINDS = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
# (verb, resource, cluster-wide) a component must not get unless its rules say so
SENSITIVE = [
    ("get", "secrets", False),
    ("list", "secrets", True),
    ("create", "pods", False),
    ("delete", "statefulsets.apps", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", False),
    ("escalate", "roles.rbac.authorization.k8s.io", False),
    ("create", "pods/exec", False),
    ("patch", "nodes", True),
]
DRAIN_RELEASE = "lfdrain"
SELF_REVIEWS = {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "selfsubjectreviews"}


def can_i(kube: Cluster, ns: str, sa: str, verb: str, resource: str, *, cluster_wide: bool = False) -> bool:
    """What `kubectl auth can-i --as=system:serviceaccount:<ns>:<sa>` asks: a SubjectAccessReview, sent through
    the Python client (one request instead of one kubectl process per question)."""
    from kubernetes import client

    name, _, group = resource.partition(".")
    name, _, sub = name.partition("/")
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=f"system:serviceaccount:{ns}:{sa}",
            groups=["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource=name, group=group, subresource=sub or None, namespace=None if cluster_wide else ns
            ),
        )
    )
    with kube.api_client() as api:
        return bool(client.AuthorizationV1Api(api).create_subject_access_review(review).status.allowed)


def kubectl_can_i(kube: Cluster, ns: str, sa: str, verb: str, resource: str) -> bool:
    proc = kube.kubectl("auth", "can-i", verb, resource, f"--as=system:serviceaccount:{ns}:{sa}", "-n", ns, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {verb} {resource}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


def grants(objects: list[dict[str, Any]], sa: str) -> list[tuple[dict[str, Any], bool]]:
    """The rules bound to a ServiceAccount, each with whether it applies cluster-wide."""
    roles = {(o["kind"], o["metadata"]["name"]): o for o in objects if o["kind"] in ("Role", "ClusterRole")}
    out: list[tuple[dict[str, Any], bool]] = []
    for b in objects:
        if b["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s["name"] == sa for s in b.get("subjects") or []):
            continue
        role = roles.get((b["roleRef"]["kind"], b["roleRef"]["name"]))
        assert role is not None, f"{b['kind']}/{b['metadata']['name']} refers to a role the release lacks"
        out += [(r, b["kind"] == "ClusterRoleBinding") for r in role.get("rules") or []]
    return out


def rule_allows(rule: dict[str, Any], verb: str, resource: str) -> bool:
    name, _, group = resource.partition(".")
    return (
        (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        and (name in rule.get("resources", []) or "*" in rule.get("resources", []))
        and (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
    )


@pytest.mark.timeout(300)
@pytest.mark.parametrize("profile", profiles())
def test_service_accounts_least_privilege(kube: Cluster, namespace_factory: Callable[[str], str], profile: str) -> None:
    ns = namespace_factory(f"rbac-{profile}")
    release = f"rb{secrets.token_hex(2)}"  # unique: ClusterRoles are not namespaced
    manifest = helm.render_profile(profile, namespace=ns, release=release)
    objects = [o for o in manifest.objects if o["kind"] in RBAC_KINDS]
    accounts = [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"]
    assert accounts, f"profile {profile} renders no ServiceAccount"
    cluster_scoped = [o for o in objects if o["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    try:
        kube.apply(objects)
        bad: list[str] = []
        for sa in accounts:
            rules = grants(objects, sa)
            for rule, wide in rules:
                for group in rule.get("apiGroups") or [""]:
                    resource = rule["resources"][0] + (f".{group}" if group else "")
                    verb = rule["verbs"][0]
                    if not can_i(kube, ns, sa, verb, resource, cluster_wide=wide):
                        bad.append(f"{sa}: may not {verb} {resource} although its rules grant it")
            for verb, resource, wide in SENSITIVE:
                granted = any(rule_allows(r, verb, resource) and (w or not wide) for r, w in rules)
                if not granted and can_i(kube, ns, sa, verb, resource, cluster_wide=wide):
                    bad.append(f"{sa}: may {verb} {resource}{' cluster-wide' if wide else ''} without a rule")
            if kubectl_can_i(kube, ns, sa, "get", "secrets") != any(rule_allows(r, "get", "secrets") for r, _ in rules):
                bad.append(f"{sa}: kubectl auth can-i get secrets disagrees with its rules")
            listed = kube.kubectl("auth", "can-i", "--list", f"--as=system:serviceaccount:{ns}:{sa}", "-n", ns)
            granted_resources = {res.split("/")[0] for r, _ in rules for res in r.get("resources", [])}
            for line in listed.stdout.splitlines()[1:]:
                resource = line.split()[0] if line.split() else ""
                base = resource.split(".")[0].split("/")[0]
                if resource and not resource.startswith("[") and base not in SELF_REVIEWS | granted_resources:
                    bad.append(f"{sa}: auth can-i --list shows {line.strip()!r}, which no rendered rule grants")
        assert not bad, f"profile {profile}: ServiceAccounts with more (or less) than their RBAC:\n" + "\n".join(bad)
    finally:
        for o in cluster_scoped:
            kube.kubectl("delete", o["kind"].lower(), o["metadata"]["name"], "--ignore-not-found", check=False)


# ------------------------------------------------------------------------------------------------ drain
def ready_nodes(kube: Cluster) -> list[str]:
    """Schedulable nodes that take any pod: not the local cluster's tainted real node, which only pods tolerating
    it use (the secret generator Job among them), so it is never cordoned here."""
    nodes = json.loads(kube.kubectl("get", "nodes", "-o", "json").stdout)["items"]
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if not n["spec"].get("unschedulable")
        and not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])
    )


def ready_pods(kube: Cluster, ns: str, selector: dict[str, str]) -> list[tuple[str, str]]:
    """(pod, node) of the Ready, non-terminating pods matching the selector."""
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = json.loads(kube.kubectl("get", "pods", "-n", ns, "-l", sel, "-o", "json", timeout=30).stdout)["items"]
    return [
        (p["metadata"]["name"], p["spec"].get("nodeName", ""))
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions") or [])
    ]


def wait_ready(kube: Cluster, ns: str, selector: dict[str, str], count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ready_pods(kube, ns, selector)) >= count:
            return
        time.sleep(1)
    raise AssertionError(f"pods {selector} in {ns}: {len(ready_pods(kube, ns, selector))} Ready, want {count}")


def autoscaler_minimum(objects: list[dict[str, Any]], kind: str, name: str) -> int:
    for o in objects:
        spec = o.get("spec") or {}
        ref = spec.get("scaleTargetRef") or {}
        if ref.get("name") == name and ref.get("kind", "Deployment") == kind:
            if o["kind"] == "HorizontalPodAutoscaler":
                return int(spec.get("minReplicas", 1))
            if o["kind"] == "ScaledObject":
                return int(spec.get("minReplicaCount", 0))
    return 0


@pytest.mark.timeout(600)
def test_drain_respects_pdbs(kube: Cluster, namespace_factory: Callable[[str], str]) -> None:
    ns = namespace_factory("drain")
    manifest = helm.render_profile("prod", namespace=ns, release=DRAIN_RELEASE)
    guarded: dict[str, tuple[str, dict[str, str], int]] = {}  # component -> (workload, selector, replicas)
    for w in manifest.workloads():
        if w["kind"] not in ("Deployment", "StatefulSet"):
            continue
        comp = w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
        if comp in ("ide", "runtime"):
            replicas = max(2, autoscaler_minimum(manifest.objects, w["kind"], w["metadata"]["name"]))
            workload = f"{w['kind'].lower()}/{w['metadata']['name']}"
            guarded[comp] = (workload, w["spec"]["selector"]["matchLabels"], replicas)
    assert set(guarded) == {"ide", "runtime"}, f"prod renders no IDE/runtime workloads: {sorted(guarded)}"

    nodes = ready_nodes(kube)
    assert len(nodes) >= 3, f"need 3+ schedulable nodes, have {nodes}"
    target, others = nodes[0], nodes[1:]
    try:
        for n in others:  # everything lands on the target node
            kube.kubectl("cordon", n)
        kube.helm(
            "install",
            DRAIN_RELEASE,
            str(UMBRELLA),
            "-n",
            ns,
            "-f",
            str(profile_file("prod")),
            "--wait",
            "--timeout",
            "5m",
            timeout=400,
        )
        for _comp, (workload, selector, replicas) in guarded.items():
            # what KEDA/the HPA would hold at their minimum (no metrics pipeline in this test)
            kube.kubectl("scale", workload, "-n", ns, f"--replicas={replicas}")
            wait_ready(kube, ns, selector, replicas, 180)
        for _comp, (_w, selector, _r) in guarded.items():
            on = {node for _, node in ready_pods(kube, ns, selector)}
            assert on == {target}, f"{selector}: pods on {on}, expected all on {target}"
        for n in others:
            kube.kubectl("uncordon", n)

        cmd = [tool("kubectl"), "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=300s"]
        # the IDE and runtime pods only (the data tier's budgets would serialise the drain for minutes)
        cmd.append(f"--pod-selector=app.kubernetes.io/instance={DRAIN_RELEASE},app.kubernetes.io/name in (ide,runtime)")
        drain = subprocess.Popen(cmd, env=kube.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lowest = {comp: replicas for comp, (_w, _s, replicas) in guarded.items()}
        deadline = time.monotonic() + 330
        while drain.poll() is None and time.monotonic() < deadline:
            for comp, (_w, selector, _r) in guarded.items():
                lowest[comp] = min(lowest[comp], len(ready_pods(kube, ns, selector)))
            time.sleep(0.3)
        if drain.poll() is None:
            drain.kill()
        output = drain.communicate(timeout=30)[0]
        assert drain.returncode == 0, f"kubectl drain {target} failed:\n{output[-3000:]}"
        assert "disruption budget" in output, (
            f"the drain never hit a PodDisruptionBudget (were the PDBs rendered?):\n{output[-3000:]}"
        )
        for comp, (_w, selector, replicas) in guarded.items():
            floor = math.ceil(replicas / 2)
            assert lowest[comp] >= floor, f"{comp}: {lowest[comp]} Ready pods during the drain, PDB floor {floor}"
            wait_ready(kube, ns, selector, replicas, 180)
            on = {node for _, node in ready_pods(kube, ns, selector)}
            assert target not in on, f"{comp}: pods still on the drained node {target}"
    finally:  # the namespace (and the release in it) goes with namespace_factory
        for n in nodes:
            kube.kubectl("uncordon", n, check=False)


# ------------------------------------------------------------------------------------------- failed installs
def one_per_chart(files: list[Path]) -> list[Path]:
    """One bad-values file per area (umbrella, each component, global): the install refusals to try for real."""
    picked: dict[str, Path] = {}
    for f in files:
        picked.setdefault(f.stem.split("-")[0], f)
    return sorted(picked.values())


@pytest.mark.timeout(300)
def test_failed_install_leaves_nothing(kube: Cluster, namespace_factory: Callable[[str], str]) -> None:
    """`helm install` with bad values is refused before anything reaches the API server: no release record,
    no object of the release in the namespace."""
    files = one_per_chart(sorted(BAD_VALUES.glob("*.yaml")))
    assert len(files) >= 5, f"too few bad-values areas: {files}"
    ns = namespace_factory("refused")
    leftovers: list[str] = []
    for f in files:
        release = f"bad-{f.stem}"[:40].rstrip("-")
        args = ["install", release, str(UMBRELLA), "-n", ns, "-f", str(profile_file("dev")), "-f", str(f)]
        with pytest.raises(helm.HelmError):
            kube.helm(*args, "--wait", "--timeout", "1m", timeout=120)
        records = kube.helm("list", "-n", ns, "-a", "-q").split()
        if release in records:
            leftovers.append(f"{f.name}: helm keeps a release record {release}")
        kinds = "all,configmaps,secrets,persistentvolumeclaims,serviceaccounts,roles,rolebindings,poddisruptionbudgets"
        sel = f"app.kubernetes.io/instance={release}"
        out = kube.kubectl("get", f"{kinds},networkpolicies", "-n", ns, "-l", sel, "-o", "name").stdout.split()
        leftovers += [f"{f.name}: {name} left behind" for name in out]
    assert not leftovers, "failed installs left objects behind:\n" + "\n".join(leftovers)
