"""policy: checkov and kube-score on every profile's rendered output. Each finding is either fixed in the chart
or suppressed with a written reason (tests/scanner-skips.yaml, or a `checkov.io/skipN: CKV_K8S_xx=reason`
annotation on the object); the suite fails on any new unsuppressed finding. Counts per profile are written to
reports/scanners.json.

Both scanners also scan a planted insecure object in the same run, so a scanner that silently checks nothing
(wrong framework, parse errors, an empty report) fails the suite instead of passing it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import REPORTS, ROOT, profiles, tool

pytestmark = pytest.mark.policy

SKIPS_FILE = ROOT / "tests" / "scanner-skips.yaml"
PLANTED = "zz-planted"
PLANTED_YAML = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: planted, namespace: langflow}
spec:
  selector: {matchLabels: {app: planted}}
  template:
    metadata: {labels: {app: planted}}
    spec:
      hostNetwork: true
      containers:
        - name: c
          image: example/planted:latest
          securityContext: {privileged: true, allowPrivilegeEscalation: true}
"""
KUBE_SCORE_OPTIONAL = ("container-seccomp-profile", "container-ports-check")
CHECKOV_SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


@dataclass(frozen=True)
class Finding:
    scanner: str
    profile: str
    check: str
    kind: str
    name: str
    detail: str

    @property
    def obj(self) -> str:
        return f"{self.kind}/{self.name}"

    def __str__(self) -> str:
        return f"{self.scanner} {self.check} profile {self.profile}: {self.obj}: {self.detail}"


def load_skips() -> dict[str, list[dict[str, Any]]]:
    return yaml.safe_load(SKIPS_FILE.read_text()) or {}


def suppressed(finding: Finding, skips: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    for entry in skips.get(finding.scanner) or []:
        if entry["check"] != finding.check or not re.fullmatch(entry["objects"], finding.obj):
            continue
        if entry.get("profiles") and finding.profile not in entry["profiles"]:
            continue
        return entry
    return None


def run_checkov(directory: Path) -> list[Finding]:
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false", LOG_LEVEL="ERROR")
    cmd = [tool("checkov"), "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet"]
    cmd += ["--compact", "--skip-download"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from e
    reports = report if isinstance(report, list) else [report]
    findings: list[Finding] = []
    for r in reports:
        if r.get("check_type") != "kubernetes":
            continue
        errors = r.get("summary", {}).get("parsing_errors", 0)
        assert not errors, f"checkov could not parse {errors} file(s): {r['results'].get('parsing_errors')}"
        for c in r["results"]["failed_checks"]:
            kind, _, rest = c["resource"].partition(".")
            _, _, rest = rest.partition(".")  # namespace
            name = rest.split(".")[0]
            profile = Path(c["file_path"]).stem
            findings.append(Finding("checkov", profile, c["check_id"], kind, name, c["check_name"]))
    return findings


def run_kube_score(path: Path, profile: str) -> list[Finding]:
    cmd = [tool("kube-score"), "score", "-o", "json", "--kubernetes-version", "v1.34"]
    for t in KUBE_SCORE_OPTIONAL:
        cmd += ["--enable-optional-test", t]
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=300)
    try:
        objects = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"kube-score printed no JSON (exit {proc.returncode}):\n{proc.stderr[-3000:]}") from e
    findings: list[Finding] = []
    for o in objects:
        for c in o.get("checks") or []:
            if c.get("skipped") or c["grade"] >= 10:
                continue
            summaries = "; ".join(sorted({x.get("summary", "") for x in c.get("comments") or []}))
            findings.append(
                Finding(
                    "kube-score",
                    profile,
                    c["check"]["id"],
                    o["type_meta"]["kind"],
                    o["object_meta"]["name"],
                    summaries,
                )
            )
    return findings


@pytest.fixture(scope="module")
def scan(rendered_profiles: dict[str, helm.Manifest]) -> Iterator[dict[str, list[Finding]]]:
    """Both scanners over every profile (plus the planted object), once; counts go to reports/scanners.json."""
    with tempfile.TemporaryDirectory(prefix="scanners-") as tmp:
        files: dict[str, Path] = {}
        for name, manifest in rendered_profiles.items():
            files[name] = Path(tmp) / f"{name}.yaml"
            files[name].write_text(manifest.to_yaml())
        files[PLANTED] = Path(tmp) / f"{PLANTED}.yaml"
        files[PLANTED].write_text(PLANTED_YAML)
        findings = {"checkov": run_checkov(Path(tmp)), "kube-score": []}
        for name, path in files.items():
            findings["kube-score"] += run_kube_score(path, name)
    skips = load_skips()
    summary: dict[str, Any] = {}
    for scanner, items in findings.items():
        for name in [*profiles(), PLANTED]:
            mine = [f for f in items if f.profile == name]
            open_ = [f for f in mine if not suppressed(f, skips)]
            summary.setdefault(name, {})[scanner] = {
                "findings": len(mine),
                "suppressed": len(mine) - len(open_),
                "unsuppressed": len(open_),
                "open": sorted({f"{f.check} {f.obj}" for f in open_}),
            }
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "scanners.json").write_text(json.dumps(summary, indent=2) + "\n")
    yield findings


@pytest.mark.parametrize("scanner", ["checkov", "kube-score"])
@pytest.mark.parametrize("name", profiles())
def test_no_unsuppressed_findings(scanner: str, name: str, scan: dict[str, list[Finding]]) -> None:
    skips = load_skips()
    mine = [f for f in scan[scanner] if f.profile == name]
    open_ = sorted({str(f) for f in mine if not suppressed(f, skips)})
    assert not open_, (
        f"{len(open_)} {scanner} finding(s) in profile {name}: fix them in the chart or suppress them with a "
        f"reason (tests/scanner-skips.yaml):\n" + "\n".join(open_)
    )


@pytest.mark.parametrize("scanner", ["checkov", "kube-score"])
def test_scanner_catches_the_planted_object(scanner: str, scan: dict[str, list[Finding]]) -> None:
    planted = {f.check for f in scan[scanner] if f.profile == PLANTED}
    expected = {"checkov": {"CKV_K8S_16", "CKV_K8S_19"}, "kube-score": {"container-security-context-privileged"}}
    assert expected[scanner] <= planted, f"{scanner} missed the planted privileged pod: found only {sorted(planted)}"


def test_skip_entries_are_complete() -> None:
    skips = load_skips()
    assert set(skips) <= {"checkov", "kube-score"}, f"unknown scanners in {SKIPS_FILE.name}: {set(skips)}"
    bad = []
    for scanner, entries in skips.items():
        for i, entry in enumerate(entries or []):
            if set(entry) - {"check", "objects", "profiles", "reason"}:
                bad.append(f"{scanner}[{i}]: unknown keys {set(entry) - {'check', 'objects', 'profiles', 'reason'}}")
            if not entry.get("check") or not entry.get("objects"):
                bad.append(f"{scanner}[{i}]: needs check and objects")
            if len(str(entry.get("reason", "")).split()) < 6:
                bad.append(f"{scanner}[{i}] ({entry.get('check')}): the reason must say why, in a sentence")
            try:
                re.compile(str(entry.get("objects", "")))
            except re.error as e:
                bad.append(f"{scanner}[{i}]: objects is not a regex: {e}")
    assert not bad, "\n".join(bad)


def test_checkov_skip_annotations_have_reasons(rendered_profiles: dict[str, helm.Manifest]) -> None:
    bad = []
    for name, manifest in rendered_profiles.items():
        for obj in manifest.objects:
            metas = [obj.get("metadata") or {}]
            if "template" in (obj.get("spec") or {}):
                metas.append(obj["spec"]["template"].get("metadata") or {})
            for meta in metas:
                for key, value in (meta.get("annotations") or {}).items():
                    if CHECKOV_SKIP_ANNOTATION.match(key) and not re.fullmatch(r"CKV2?_K8S_\d+=\S.{9,}", str(value)):
                        bad.append(f"profile {name}: {obj['kind']}/{obj['metadata']['name']}: {key}: {value!r}")
    assert not bad, "checkov skip annotations without a reason (CKV_K8S_xx=<why>):\n" + "\n".join(bad)


def test_decisions_in_the_chart_carry_their_reasons(rendered_profiles: dict[str, helm.Manifest]) -> None:
    """Suppressions that are the chart's decisions are annotations on the objects they concern, so users who scan
    the chart see them: every checkov.io/skipN reads `ID=reason`, every check in kube-score/ignore has its reason
    in kube-score.langflow-platform.dev/<check>, each reason a sentence."""
    bad: list[str] = []
    seen = 0
    for profile, manifest in rendered_profiles.items():
        for o in manifest.objects:
            ann = (o.get("metadata") or {}).get("annotations") or {}
            where = f"{profile}: {o['kind']}/{o['metadata']['name']}"
            reasons = [v.partition("=")[2] for k, v in ann.items() if CHECKOV_SKIP_ANNOTATION.match(k)]
            for check in filter(None, str(ann.get("kube-score/ignore", "")).split(",")):
                reasons.append(ann.get(f"kube-score.langflow-platform.dev/{check}", ""))
            seen += len(reasons)
            bad += [
                f"{where}: a suppression without a sentence of reason ({r!r})" for r in reasons if len(r.split()) < 6
            ]
    assert seen, "no suppression annotations at all: the scanners' decisions went missing from the charts"
    assert not bad, "\n".join(bad)
