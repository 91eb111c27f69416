"""schema: every profile, rendered as on a cluster that has the CRDs we use (KEDA, cert-manager, CloudNativePG,
Prometheus Operator), validates with kubeconform -strict against LOCAL schemas only (.tools/schemas, made by
tools/gen_schemas.py from Kubernetes' own OpenAPI and the CRDs): no unknown field, no wrong type, no kind
without a schema. A failure names the profile, the object and the reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import ROOT, TOOLS, profiles, tool

pytestmark = pytest.mark.schema

SCHEMAS = TOOLS / "schemas"


def kubernetes_version() -> str:
    text = (ROOT / "tools" / "versions.env").read_text()
    match = re.search(r"^KUBERNETES_VERSION=v?(\S+)$", text, re.M)
    assert match, "tools/versions.env has no KUBERNETES_VERSION"
    return match[1]


def crd_api_versions() -> list[str]:
    index = SCHEMAS / "crd-api-versions.txt"
    assert index.exists(), f"{index} missing: run `tools/install.sh schemas` (part of `make tools`)"
    return index.read_text().split()


def kubeconform(paths: list[Path]) -> list[dict[str, Any]]:
    """kubeconform -strict with local schemas only; returns its per-resource results (invalid/error ones)."""
    builtin = str(SCHEMAS / "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}")
    builtin += "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    crds = str(SCHEMAS / "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")
    cmd = [
        tool("kubeconform"),
        "-strict",
        "-summary",
        "-output",
        "json",
        "-kubernetes-version",
        kubernetes_version(),
        "-schema-location",
        builtin,
        "-schema-location",
        crds,
        *map(str, paths),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"kubeconform printed no JSON (exit {proc.returncode}): {proc.stderr}") from e
    assert report.get("summary"), f"kubeconform gave no summary: {proc.stdout[:500]}"
    return report


def reasons(result: dict[str, Any]) -> str:
    """The innermost causes of a failure (kubeconform nests them under anyOf for nullable fields)."""

    def noise(msg: str) -> bool:
        return msg == "anyOf failed" or re.fullmatch(r"got \w+, want null", msg) is not None

    errors = [f"{e['path']}: {e['msg']}" for e in result.get("validationErrors") or [] if not noise(e["msg"])]
    causes = re.findall(r"- at '([^']*)': ([^-]+?)(?=\s+- at|$)", result.get("msg", ""))
    deep = [f"{p}: {m.strip()}" for p, m in causes if not noise(m.strip())]
    return "; ".join(deep or errors or [result.get("msg", "")])


@pytest.fixture(scope="module")
def kubeconform_results() -> Iterator[dict[str, dict[str, Any]]]:
    """Every profile rendered with the CRD API versions, validated by one kubeconform run."""
    with tempfile.TemporaryDirectory(prefix="kubeconform-") as tmp:
        files: dict[str, Path] = {}
        for name in profiles():
            manifest = helm.render_profile(name, api_versions=crd_api_versions())
            path = Path(tmp) / f"{name}.yaml"
            path.write_text(manifest.to_yaml())
            files[name] = path
        report = kubeconform(list(files.values()))
        by_profile: dict[str, dict[str, Any]] = {n: {"failures": [], "count": 0} for n in files}
        for name, path in files.items():
            by_profile[name]["count"] = sum(1 for d in yaml.safe_load_all(path.read_text()) if d)
        for result in report.get("resources", []):
            name = Path(result["filename"]).stem
            by_profile[name]["failures"].append(result)
        by_profile["_summary"] = report["summary"]
        yield by_profile


@pytest.mark.parametrize("name", profiles())
def test_profile_validates_strictly(name: str, kubeconform_results: dict[str, dict[str, Any]]) -> None:
    result = kubeconform_results[name]
    assert result["count"], f"profile {name} rendered no objects"
    lines = [
        f"profile {name}: {r.get('kind')}/{r.get('name')} ({r.get('version')}): {r['status']}: {reasons(r)}"
        for r in result["failures"]
        if r["status"] in ("statusInvalid", "statusError")
    ]
    assert not lines, f"{len(lines)} of {result['count']} objects fail kubeconform -strict:\n" + "\n".join(lines)


def test_nothing_skipped(kubeconform_results: dict[str, dict[str, Any]]) -> None:
    summary = kubeconform_results["_summary"]
    assert summary.get("skipped", 0) == 0, f"kubeconform skipped objects: {summary}"
    assert summary.get("valid", 0) > 0, f"kubeconform validated nothing: {summary}"


BROKEN = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: example/app:1.0
          securityContext: {runAsNonRot: true}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: broken, labelz: {a: b}}
spec:
  scaleTargetRef: {name: broken}
  minReplicaCount: "two"
  triggers: [{type: rabbitmq, metadata: {queueName: q}}]
---
apiVersion: example.com/v1
kind: Unknown
metadata: {name: no-schema}
"""


def test_schemas_are_strict_and_local(tmp_path: Path) -> None:
    """A misspelt field, a wrong type and a misspelt metadata field in a CRD kind, and a kind without a schema,
    are all caught."""
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    report = kubeconform([path])
    by_kind = {r["kind"]: r for r in report["resources"]}
    assert by_kind.get("Deployment", {}).get("status") == "statusInvalid", report
    assert "runAsNonRot" in reasons(by_kind["Deployment"]), reasons(by_kind["Deployment"])
    assert by_kind.get("ScaledObject", {}).get("status") == "statusInvalid", report
    assert "minReplicaCount" in reasons(by_kind["ScaledObject"]), reasons(by_kind["ScaledObject"])
    assert "labelz" in reasons(by_kind["ScaledObject"]), reasons(by_kind["ScaledObject"])  # CR metadata is strict
    assert by_kind.get("Unknown", {}).get("status") == "statusError", report
