"""Cluster layer: every profile installed, upgraded, rolled back and uninstalled on a real API server.

The default cluster is the local control plane (tests/harness/cluster.py: etcd, kube-apiserver, controller
manager, scheduler; kwok plays the kubelets, so pods turn Ready and PVCs bind without containers). Namespaces
enforce Pod Security "restricted", so admission is real: a pod the policy refuses never appears and
`helm install --wait` times out. The KEDA, cert-manager, CloudNativePG and Prometheus Operator CRDs are installed
before any chart. Assertions use the kubernetes client, not helm's output.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm as helm_lib
from tests.harness.cluster import Cluster
from tests.harness.helm import HelmError
from tests.harness.paths import COMPONENTS, ROOT, UMBRELLA, profile_file, profiles, tool

pytestmark = pytest.mark.cluster

RELEASE = "lf"
KEEP = "helm.sh/resource-policy"
UPGRADE_ANNOTATION = "langflow-platform.test/upgrade"
WAIT = "5m"


# ------------------------------------------------------------------------------------------------ helpers
def release_objects(kube: Cluster, ns: str, release: str = RELEASE) -> list[dict[str, Any]]:
    """The objects of the release's current manifest (`helm get manifest`)."""
    out = kube.helm("get", "manifest", release, "-n", ns)
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def live_objects(kube: Cluster, objects: list[dict[str, Any]], ns: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The objects as the API server has them, keyed by (kind, name); absent ones are left out. One kubectl call."""
    if not objects:
        return {}
    proc = kube.kubectl(
        "get", "-n", ns, "--ignore-not-found", "-o", "json", "-f", "-", stdin=yaml.safe_dump_all(objects), timeout=120
    )
    if not proc.stdout.strip():
        return {}
    data = json.loads(proc.stdout)
    items = data.get("items", [data]) if data.get("kind") == "List" else [data]
    return {(o["kind"], o["metadata"]["name"]): o for o in items}


def autoscaled_targets(objects: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Workload name -> (min, max) for workloads under an HPA or a KEDA ScaledObject."""
    out: dict[str, tuple[int, int]] = {}
    for h in by_kind(objects, "HorizontalPodAutoscaler"):
        out[h["spec"]["scaleTargetRef"]["name"]] = (h["spec"].get("minReplicas", 1), h["spec"]["maxReplicas"])
    for s in by_kind(objects, "ScaledObject"):
        spec = s["spec"]
        out[spec["scaleTargetRef"]["name"]] = (spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100))
    return out


def pods_of(core: Any, ns: str, selector: dict[str, str]) -> list[Any]:
    sel = ",".join(f"{k}={v}" for k, v in selector.items())
    return [p for p in core.list_namespaced_pod(ns, label_selector=sel).items if p.metadata.deletion_timestamp is None]


def is_ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def statefulset_pvcs(sts: dict[str, Any], replicas: int) -> list[str]:
    name = sts["metadata"]["name"]
    return [
        f"{t['metadata']['name']}-{name}-{i}"
        for t in sts["spec"].get("volumeClaimTemplates", [])
        for i in range(replicas)
    ]


def check_running(kube: Cluster, ns: str, objects: list[dict[str, Any]], settle: float = 60) -> dict[str, Any]:
    """check_running_now, retried for up to `settle` seconds: right after `helm --wait` an HPA may still be
    scaling a Deployment without `replicas` from 1 to its minimum (seen: IDE 1 Ready of 2 in scale-to-zero)."""
    deadline = time.monotonic() + settle
    while True:
        try:
            return check_running_now(kube, ns, objects)
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(2)


def check_running_now(kube: Cluster, ns: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Every object exists; every workload has its replicas Ready (pods admitted and Ready); PVCs exist and are
    Bound (kwok's StorageClass binds at once; a class the local cluster lacks stays Pending). Returns UIDs."""
    from kubernetes import client

    api = kube.api_client()
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    have = live_objects(kube, objects, ns)
    missing = [
        f"{o['kind']}/{o['metadata']['name']}" for o in objects if (o["kind"], o["metadata"]["name"]) not in have
    ]
    assert not missing, f"objects of the release not in the cluster: {missing}"
    scaled = autoscaled_targets(objects)
    uids: dict[str, Any] = {"statefulsets": {}, "deployments": {}, "pvcs": {}}
    problems: list[str] = []
    for kind, read in (
        ("Deployment", apps.read_namespaced_deployment),
        ("StatefulSet", apps.read_namespaced_stateful_set),
    ):
        for o in by_kind(objects, kind):
            name = o["metadata"]["name"]
            w = read(name, o["metadata"].get("namespace") or ns)
            want = o["spec"].get("replicas")
            if want is not None and name not in scaled and w.spec.replicas != want:
                problems.append(f"{kind}/{name}: spec.replicas {w.spec.replicas}, rendered {want}")
            if name in scaled and want is not None and not scaled[name][0] <= w.spec.replicas <= scaled[name][1]:
                problems.append(f"{kind}/{name}: {w.spec.replicas} replicas outside its autoscaler's {scaled[name]}")
            pods = pods_of(core, w.metadata.namespace, w.spec.selector.match_labels or {})
            ready = [p for p in pods if is_ready(p)]
            if len(ready) != w.spec.replicas or (w.status.ready_replicas or 0) != w.spec.replicas:
                problems.append(
                    f"{kind}/{name}: {len(ready)} Ready pods, status.readyReplicas {w.status.ready_replicas}, "
                    f"want {w.spec.replicas}"
                )
            uids["statefulsets" if kind == "StatefulSet" else "deployments"][name] = w.metadata.uid
            if kind == "StatefulSet":
                for pvc_name in statefulset_pvcs(o, w.spec.replicas or 0):
                    try:
                        pvc = core.read_namespaced_persistent_volume_claim(pvc_name, w.metadata.namespace)
                    except client.ApiException as exc:
                        problems.append(f"PVC {pvc_name} of StatefulSet/{name}: {exc.reason}")
                        continue
                    uids["pvcs"][pvc_name] = pvc.metadata.uid
                    sc = pvc.spec.storage_class_name
                    bound_expected = kube.kind == "local" and sc in (None, "", "kwok-volume")
                    if pvc.status.phase != "Bound" and (bound_expected or pvc.status.phase != "Pending"):
                        problems.append(f"PVC {pvc_name} (class {sc!r}) is {pvc.status.phase}")
    assert not problems, "release not running as rendered:\n" + "\n".join(problems)
    return uids


def generated_secret_specs(kube: Cluster, ns: str, release: str = RELEASE) -> list[dict[str, Any]]:
    """The specs the release's secret generator Job made its Secrets from: the spec ConfigMaps among its hooks."""
    hooks = [d for d in yaml.safe_load_all(kube.helm("get", "hooks", release, "-n", ns)) if d]
    return [
        json.loads(h["data"]["spec.json"])
        for h in hooks
        if h["kind"] == "ConfigMap" and helm_lib.SECRET_SPEC_LABEL in (h["metadata"].get("labels") or {})
    ]


def generated_secret_names(kube: Cluster, ns: str, release: str = RELEASE) -> list[str]:
    """The Secrets the release's secret generator Job made."""
    return [spec["name"] for spec in generated_secret_specs(kube, ns, release)]


def secrets_data(
    kube: Cluster, ns: str, objects: list[dict[str, Any]], generated: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """Data of the release's Secrets: those in its manifest, and the generated ones (names from the hooks)."""
    secrets = by_kind(objects, "Secret") + [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": n}} for n in generated or []
    ]
    have = live_objects(kube, secrets, ns)
    out = {}
    for s in secrets:
        obj = have.get(("Secret", s["metadata"]["name"]))
        assert obj is not None, f"Secret {s['metadata']['name']} missing"
        out[s["metadata"]["name"]] = obj.get("data") or {}
    return out


def upgrade_values(tmp: Path) -> Path:
    """Changed values for the upgrade: an annotation on every object of every component."""
    values = {c: {"commonAnnotations": {UPGRADE_ANNOTATION: "2"}} for c in COMPONENTS}
    path = tmp / "upgrade.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def helm_install(kube: Cluster, ns: str, chart: Path, values: list[Path], *extra: str) -> None:
    args = ["upgrade", "--install", RELEASE, str(chart), "-n", ns, "--wait", "--timeout", WAIT]
    for v in values:
        args += ["-f", str(v)]
    kube.helm(*args, *extra, timeout=400)


def run_helm_tests(kube: Cluster, ns: str) -> int:
    """`helm test` when the release ships test hooks (kwok completes the hook pods; see tools/kwok/)."""
    hooks = [d for d in yaml.safe_load_all(kube.helm("get", "hooks", RELEASE, "-n", ns)) if d]
    tests = [h for h in hooks if "test" in str(h["metadata"].get("annotations", {}).get("helm.sh/hook", ""))]
    if tests:
        kube.helm("test", RELEASE, "-n", ns, "--timeout", "2m", timeout=200)
    return len(tests)


# ------------------------------------------------------------------------------------------------- tests
LIFECYCLE_PARALLEL = 4  # profiles in flight at once: the time goes to waits (rollouts, hook Jobs on the real node)


def lifecycle(kube: Cluster, ns: str, profile: str, tmp_path: Path) -> None:
    """install --wait -> everything Ready -> upgrade with changed values (Secrets, PVCs, StatefulSet UIDs kept)
    -> rollback (same) -> uninstall (PVCs and keep-policy Secrets survive, the rest is gone)."""
    helm_install(kube, ns, UMBRELLA, [profile_file(profile)])
    objects = release_objects(kube, ns)
    assert objects, f"profile {profile} installed no objects"
    first = check_running(kube, ns, objects)
    generated = generated_secret_names(kube, ns)
    assert generated, f"profile {profile}: no generated Secret specs among the release's hooks"
    secrets_before = secrets_data(kube, ns, objects, generated)
    assert all(secrets_before[n] for n in generated), "the secret generator Job left a Secret empty"
    run_helm_tests(kube, ns)

    # upgrade with changed values
    helm_install(kube, ns, UMBRELLA, [profile_file(profile), upgrade_values(tmp_path)])
    upgraded = release_objects(kube, ns)
    second = check_running(kube, ns, upgraded)
    have = live_objects(kube, upgraded, ns)
    for o in upgraded:
        if o["kind"] in ("Deployment", "StatefulSet", "Service", "Secret", "ConfigMap"):
            ann = have[(o["kind"], o["metadata"]["name"])]["metadata"].get("annotations") or {}
            assert ann.get(UPGRADE_ANNOTATION) == "2", f"{o['kind']}/{o['metadata']['name']} missed the upgrade"
    assert secrets_data(kube, ns, upgraded, generated) == secrets_before, "an upgrade changed a Secret's data"
    assert second["statefulsets"] == first["statefulsets"], "an upgrade recreated a StatefulSet"
    assert second["pvcs"] == first["pvcs"], "an upgrade replaced a PVC"

    # rollback to the first revision
    kube.helm("rollback", RELEASE, "1", "-n", ns, "--wait", "--timeout", WAIT, timeout=400)
    history = json.loads(kube.helm("history", RELEASE, "-n", ns, "-o", "json"))
    assert [h["revision"] for h in history][-1] == 3 and history[-1]["status"] == "deployed"
    rolled = release_objects(kube, ns)
    third = check_running(kube, ns, rolled)
    have = live_objects(kube, rolled, ns)
    for o in by_kind(rolled, "StatefulSet") + by_kind(rolled, "Deployment"):
        ann = have[(o["kind"], o["metadata"]["name"])]["metadata"].get("annotations") or {}
        assert UPGRADE_ANNOTATION not in ann, f"rollback left the upgrade's annotation on {o['metadata']['name']}"
    assert secrets_data(kube, ns, rolled, generated) == secrets_before, "a rollback changed a Secret's data"
    assert third["statefulsets"] == first["statefulsets"], "a rollback recreated a StatefulSet"
    assert third["pvcs"] == first["pvcs"], "a rollback replaced a PVC"

    # uninstall: PVCs and keep-policy objects stay, the rest goes
    kube.helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", WAIT, timeout=400)
    from kubernetes import client

    core = client.CoreV1Api(kube.api_client())
    left_pvcs = {p.metadata.name: p.metadata.uid for p in core.list_namespaced_persistent_volume_claim(ns).items}
    for name, uid in first["pvcs"].items():
        assert left_pvcs.get(name) == uid, f"uninstall deleted PVC {name}"
    left = live_objects(kube, rolled, ns)
    for o in rolled:
        keep = (o["metadata"].get("annotations") or {}).get(KEEP) == "keep"
        present = (o["kind"], o["metadata"]["name"]) in left
        if keep:
            assert present, f"{o['kind']}/{o['metadata']['name']} has {KEEP}: keep but uninstall deleted it"
        elif o["kind"] in ("Deployment", "StatefulSet", "Service", "ConfigMap", "ScaledObject", "Secret"):
            assert not present, f"{o['kind']}/{o['metadata']['name']} survived uninstall"
    kept = [o for o in by_kind(rolled, "Secret") if (o["metadata"].get("annotations") or {}).get(KEEP) == "keep"]
    for s in kept:
        assert left[("Secret", s["metadata"]["name"])].get("data") == secrets_before[s["metadata"]["name"]]
    # generated Secrets belong to no release: uninstall leaves them, unchanged
    assert secrets_data(kube, ns, [], generated) == {n: secrets_before[n] for n in generated}


@pytest.fixture(scope="module")
def lifecycles(
    request: pytest.FixtureRequest, kube: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Exception | None]]:
    """Every collected profile's lifecycle, LIFECYCLE_PARALLEL at a time, each in its own namespace (profiles
    share nothing but the cluster). Maps profile -> the exception its lifecycle raised, or None; each
    test_profile_lifecycle[profile] re-raises its own, so a failure is still reported against its profile."""
    wanted = sorted(
        {
            item.callspec.params["profile"]
            for item in request.session.items
            if getattr(item, "originalname", "") == "test_profile_lifecycle" and hasattr(item, "callspec")
        }
    )
    namespaces = {p: f"lc-{p}-{secrets.token_hex(3)}" for p in wanted}

    def one(profile: str) -> Exception | None:
        try:
            kube.create_namespace(namespaces[profile], restricted=True)
            lifecycle(kube, namespaces[profile], profile, tmp_path_factory.mktemp(f"lc-{profile}"))
        except Exception as exc:  # handed to the profile's own test, which re-raises it
            return exc
        return None

    with ThreadPoolExecutor(max_workers=LIFECYCLE_PARALLEL) as pool:
        results = dict(zip(wanted, pool.map(one, wanted), strict=True))
    yield results
    for ns in namespaces.values():
        kube.delete_namespace(ns, wait=False)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("profile", profiles())
def test_profile_lifecycle(lifecycles: dict[str, Exception | None], profile: str) -> None:
    """The profile's install -> upgrade -> rollback -> uninstall (see lifecycle()) passed. The module's first
    lifecycle test runs every profile's, concurrently; the timeout covers all of them."""
    exc = lifecycles[profile]
    if exc is not None:
        raise exc


# ------------------------------------------------------------------------------- upgrade from an older chart
STS_MUTABLE = {"replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}  # fmt: skip


def immutable_changes(old: helm_lib.Manifest, new: helm_lib.Manifest) -> dict[str, dict[str, Any]]:
    """StatefulSet spec fields (other than the mutable ones) that differ between two renders."""
    out: dict[str, dict[str, Any]] = {}
    new_sts = {o["metadata"]["name"]: o for o in new.of_kind("StatefulSet")}
    for o in old.of_kind("StatefulSet"):
        n = new_sts.get(o["metadata"]["name"])
        if n is None:
            continue
        keys = (set(o["spec"]) | set(n["spec"])) - STS_MUTABLE
        diff = {
            k: {"from": o["spec"].get(k), "to": n["spec"].get(k)} for k in keys if o["spec"].get(k) != n["spec"].get(k)
        }
        if diff:
            out[o["metadata"]["name"]] = diff
    return out


PREVIOUS_RELEASE = ROOT / "tests" / "previous-release"


def previous_chart_commit() -> tuple[str, str] | None:
    """The previous chart version to upgrade from: the newest git tag `langflow-platform-*` (a release), else
    the commit pinned in tests/previous-release (the baseline before the first release; bump it when releasing).
    Returns (commit, label)."""
    git = ["git", "-C", str(ROOT)]
    tags = subprocess.run([*git, "tag", "-l", "langflow-platform-*", "--sort=-v:refname"], capture_output=True,
                          text=True, check=True).stdout.split()  # fmt: skip
    if tags:
        return tags[0], f"tag {tags[0]}"
    pinned = [line.split("#")[0].strip() for line in PREVIOUS_RELEASE.read_text().splitlines()]
    commit = next((c for c in pinned if c), "")
    if not commit:
        return None
    subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"], check=True)
    return commit, f"pinned baseline {commit[:10]} (tests/previous-release)"


@pytest.fixture
def previous_chart(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """The umbrella chart and dev profile of previous_chart_commit(), with dependencies vendored."""
    found = previous_chart_commit()
    if found is None:
        pytest.fail("no previous chart version in git history (no tag langflow-platform-*, no commit with real charts)")
    commit, label = found
    tree = tmp_path / "previous"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "charts", "values"], capture_output=True,
                             check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    charts = sorted(p for p in (tree / "charts").iterdir() if p.name not in ("langflow-common", "langflow-platform"))
    for chart in [*charts, tree / "charts" / "langflow-platform"]:
        if (chart / "Chart.yaml").exists():
            subprocess.run([tool("helm"), "dependency", "update", "--skip-refresh", str(chart)], check=True,
                           capture_output=True, timeout=120)  # fmt: skip
    yield tree / "charts" / "langflow-platform", tree / "values" / "dev.yaml", label
    shutil.rmtree(tree, ignore_errors=True)


@pytest.mark.timeout(420)
def test_upgrade_from_previous_chart_version(
    kube: Cluster, namespace_factory: Callable[[str], str], previous_chart: tuple[Path, Path, str]
) -> None:
    """dev profile: install the previous chart version, upgrade to this one: Secrets and PVCs kept, StatefulSets
    not recreated, everything Ready."""
    chart, values, label = previous_chart
    ns = namespace_factory("upgrade-prev")
    helm_install(kube, ns, chart, [values])
    old_objects = release_objects(kube, ns)
    before = check_running(kube, ns, old_objects)
    old_secrets = secrets_data(kube, ns, old_objects, generated_secret_names(kube, ns))
    try:
        helm_install(kube, ns, UMBRELLA, [profile_file("dev")])
    except HelmError as exc:
        if "Forbidden" not in exc.stderr:
            raise
        old = helm_lib.template(chart, values=[values], release=RELEASE, namespace=ns)
        new = helm_lib.template(UMBRELLA, values=[profile_file("dev")], release=RELEASE, namespace=ns)
        pytest.fail(
            f"helm upgrade from {label} to this chart is refused by the API server: {exc.stderr}\n"
            f"StatefulSet fields that cannot change in place: {immutable_changes(old, new)}"
        )
    new_objects = release_objects(kube, ns)
    after = check_running(kube, ns, new_objects)
    # every Secret of the previous version is still there (the generated ones now outside the release); its
    # passwords unchanged; only keys the new specs derive from them (URLs, the broker's definitions) may follow
    derived = {
        spec["name"]: {k["key"] for k in spec["keys"] if "template" in k} for spec in generated_secret_specs(kube, ns)
    }
    new_secrets = secrets_data(kube, ns, new_objects, sorted({*derived, *old_secrets}))
    for name, data in old_secrets.items():
        changed = [k for k in data if new_secrets[name].get(k) != data[k] and k not in derived.get(name, set())]
        assert not changed, f"upgrade from {label} changed or dropped Secret {name} keys {changed}"
    for name, uid in before["statefulsets"].items():
        if name in after["statefulsets"]:
            assert after["statefulsets"][name] == uid, f"upgrade from {label} recreated StatefulSet {name}"
    for name, uid in before["pvcs"].items():
        if name in after["pvcs"]:
            assert after["pvcs"][name] == uid, f"upgrade from {label} replaced PVC {name}"
