"""render: every profile renders through the umbrella; objects carry the library chart's conventions."""

from __future__ import annotations

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
