"""render: every profile renders through the umbrella; objects carry the library chart's conventions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from tests.harness import helm
from tests.harness.paths import COMPONENTS, profiles

pytestmark = pytest.mark.render


def test_profiles_exist() -> None:
    required = {"dev", "prod", "aws", "redis-queue", "scale-to-zero", "weaviate", "milvus", "external"}
    assert required <= set(profiles()), f"missing profiles: {required - set(profiles())}"


def test_profile_renders_objects(manifest: helm.Manifest) -> None:
    assert manifest.objects, f"{manifest.source}: rendered nothing"
    for obj in manifest.objects:
        meta = obj["metadata"]
        where = f"{manifest.source}: {obj['kind']}/{meta.get('name')}"
        assert meta.get("namespace") == "langflow" or obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}, where
        labels = meta.get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
            "app.kubernetes.io/part-of",
        ):
            assert key in labels, f"{where}: label {key} missing"


def test_object_names_unique(manifest: helm.Manifest) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in manifest.objects:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in seen, f"{manifest.source}: {key} rendered twice"
        seen.add(key)


@pytest.mark.parametrize("component", COMPONENTS)
def test_component_can_be_switched_off(component: str) -> None:
    m = helm.render_profile("prod", set_values={f"{component}.enabled": False})
    names = {o["metadata"].get("labels", {}).get("app.kubernetes.io/name") for o in m.objects}
    assert component not in names, f"{component}.enabled=false still renders {component} objects"
    assert m.objects, "switching one component off must leave the others"


def test_image_latest_tag_refused() -> None:
    with pytest.raises(helm.HelmError, match='must not be "latest"'):
        helm.render_profile("dev", set_values={"ide.image.tag": "latest"})


# --- PodDisruptionBudgets at the workload's minimum (issue: the scale-to-zero PDB blocked every drain) ------------


def _min_running(m: helm.Manifest, workload: dict[str, Any]) -> int:
    """The fewest pods the workload runs while it runs at all: the autoscaler's minimum (KEDA or HPA), at least 1
    (a scale-to-zero workload that has woken up runs one pod), else its replicas."""
    name, kind = workload["metadata"]["name"], workload["kind"]
    for so in m.of_kind("ScaledObject"):
        if so["spec"]["scaleTargetRef"]["name"] == name:
            return max(int(so["spec"].get("minReplicaCount", 1)), 1)
    for hpa in m.of_kind("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["name"] == name and ref["kind"] == kind:
            return max(int(hpa["spec"].get("minReplicas", 1)), 1)
    return int(workload["spec"].get("replicas", 1))


def _resolve(value: int | str, pods: int, *, round_up: bool) -> int:
    """An intstr of a PDB resolved against `pods` as the disruption controller does (percentages round up)."""
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * pods / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


@pytest.mark.render
def test_every_pdb_allows_a_disruption_at_its_workloads_minimum(profile: str, manifest: helm.Manifest) -> None:
    for pdb in manifest.of_kind("PodDisruptionBudget"):
        sel = pdb["spec"]["selector"]["matchLabels"]
        targets = [
            w
            for w in manifest.workloads()
            if w["kind"] in ("Deployment", "StatefulSet")
            and all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in sel.items())
        ]  # fmt: skip
        if not targets:
            continue  # operator-made pods (CloudNativePG): their PDBs are the operator's concern
        pods = sum(_min_running(manifest, w) for w in targets)
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            allowed = _resolve(spec["maxUnavailable"], pods, round_up=True)
        else:
            allowed = pods - _resolve(spec["minAvailable"], pods, round_up=True)
        assert allowed >= 1, (
            f"{profile}: PDB {pdb['metadata']['name']} allows {allowed} disruptions at {pods} pod(s) "
            f"({ {k: v for k, v in spec.items() if k != 'selector'} }): a node drain would block"
        )
