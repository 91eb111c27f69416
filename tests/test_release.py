"""release: versioned chart archives, pushed to a real OCI registry on loopback and used from there."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import CHARTS, UMBRELLA, profile_file
from tests.harness.registry import Registry, registry

pytestmark = pytest.mark.release

CHART_NAMES = sorted(p.parent.name for p in CHARTS.glob("*/Chart.yaml"))


def chart_meta(name: str) -> dict:
    return yaml.safe_load((CHARTS / name / "Chart.yaml").read_text())


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`make package`: one archive per chart, the umbrella with its dependencies inside."""
    dist = tmp_path_factory.mktemp("dist")
    out: dict[str, Path] = {}
    for name in CHART_NAMES:
        helm.run(["package", str(CHARTS / name), "-d", str(dist)])
        out[name] = dist / f"{name}-{chart_meta(name)['version']}.tgz"
        assert out[name].exists(), f"helm package did not write {out[name].name}"
    return out


@pytest.fixture(scope="module")
def oci() -> Iterator[Registry]:
    with registry() as reg:
        yield reg


@pytest.mark.timeout(300)
def test_umbrella_archive_carries_every_dependency(packages: dict[str, Path]) -> None:
    with tarfile.open(packages["langflow-platform"]) as tar:
        names = tar.getnames()
    for dep in chart_meta("langflow-platform")["dependencies"]:
        assert any(n.startswith(f"langflow-platform/charts/{dep['name']}") for n in names), (
            f"{dep['name']} missing from the umbrella archive"
        )
    assert not any("/ci/" in n for n in names), "CI values files must not ship in the archive"


@pytest.mark.timeout(300)
def test_charts_are_semver_and_pin_a_real_langflow(packages: dict[str, Path]) -> None:
    import re

    for name in CHART_NAMES:
        meta = chart_meta(name)
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", meta["version"]), f"{name}: version {meta['version']}"
    assert chart_meta("langflow-platform")["appVersion"] == "1.13.0"


@pytest.mark.timeout(300)
def test_push_and_render_from_oci_registry(packages: dict[str, Path], oci: Registry) -> None:
    for archive in packages.values():
        helm.run(["push", str(archive), oci.oci(), "--plain-http"])
    assert {f"charts/{n}" for n in CHART_NAMES} <= set(oci.catalog())
    ref = f"{oci.oci()}/langflow-platform"
    version = chart_meta("langflow-platform")["version"]
    shown = yaml.safe_load(helm.run(["show", "chart", ref, "--version", version, "--plain-http"]))
    assert shown["name"] == "langflow-platform" and shown["version"] == version
    remote = helm.template(ref, values=[profile_file("prod")], extra=["--version", version, "--plain-http"])
    local = helm.template(UMBRELLA, values=[profile_file("prod")])
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, remote.objects)) == sorted(map(key, local.objects))


def rendered_images(manifest: helm.Manifest) -> set[str]:
    images: set[str] = set()
    for obj in manifest.objects:
        spec = obj.get("spec", {})
        pod = spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec") or spec.get(
            "template", {}
        ).get("spec", {})
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            if c.get("image"):  # CloudNativePG fills in its own Pooler image
                images.add(c["image"])
        for key in ("imageName",):  # CloudNativePG Cluster / Pooler images
            if isinstance(spec.get(key), str):
                images.add(spec[key])
    return images


def test_artifacthub_annotations_list_every_image(rendered_profiles: dict[str, helm.Manifest]) -> None:
    annotations = chart_meta("langflow-platform").get("annotations", {})
    for key in ("artifacthub.io/images", "artifacthub.io/license", "artifacthub.io/links", "artifacthub.io/changes"):
        assert key in annotations, f"Chart.yaml lacks the {key} annotation"
    listed = {i["image"] for i in yaml.safe_load(annotations["artifacthub.io/images"])}
    used = set().union(*(rendered_images(m) for m in rendered_profiles.values()))
    assert used <= listed, f"images rendered by some profile but missing from artifacthub.io/images: {used - listed}"
