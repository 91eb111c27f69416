"""Alerts and dashboards name Kubernetes objects (HPA, StatefulSet, Deployment, CronJob); those names must be the
ones the charts render. Found blind once: every rule and panel selected the runtime's HPA as `keda-hpa-<name>`
while the ScaledObject names its HPA `<release>-runtime` (advanced.horizontalPodAutoscalerConfig.name), so
LangflowRuntimeQueueBacklog and the HPA branch of KEDAScaledObjectNotReady could never fire.

Every positive object matcher (`=` or `=~`) in alerts/*.rules.yaml and dashboards/*.json must match an object
of that kind in a profile's render; every object a promtool test series names must exist in the render of the
release its namespace label names (the tests use namespace = release).
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import ROOT, profiles

pytestmark = pytest.mark.alerts

# kube-state-metrics label -> the kind of object it names
OBJECT_LABELS = {
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "statefulset": "StatefulSet",
    "deployment": "Deployment",
    "cronjob": "CronJob",
}
MATCHER = re.compile(r"\b(" + "|".join(OBJECT_LABELS) + r')\s*(=~|=|!=|!~)\s*"([^"]*)"')


@cache
def rendered_names(release: str = "lf") -> dict[str, set[str]]:
    """Object names by kind over every profile's render of `release`; a ScaledObject's HPA counts as an HPA
    under the name KEDA gives it (advanced.horizontalPodAutoscalerConfig.name, else keda-hpa-<name>)."""
    names: dict[str, set[str]] = {kind: set() for kind in OBJECT_LABELS.values()}
    for p in profiles():
        m = helm.render_profile(p, release=release)
        for kind in names:
            names[kind] |= {o["metadata"]["name"] for o in m.of_kind(kind)}
        for so in m.of_kind("ScaledObject"):
            hpa = ((so["spec"].get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get("name")
            names["HorizontalPodAutoscaler"].add(hpa or f"keda-hpa-{so['metadata']['name']}")
    return names


def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for f in sorted((ROOT / "alerts").glob("*.rules.yaml")):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                out.append((f"{f.name}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    return out


def _dashboard_exprs() -> list[tuple[str, str]]:
    out = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("expr"), str):
                out.append((where, node["expr"]))
            for k, v in node.items():
                walk(v, f"{where}/{node.get('title', k)}" if k == "panels" else where)
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    for f in sorted((ROOT / "dashboards").glob("*.json")):
        walk(json.loads(f.read_text()), f.name)
    return out


def object_matchers(expr: str) -> list[tuple[str, str, str]]:
    return [(label, op, value) for label, op, value in MATCHER.findall(expr)]


def test_matcher_extraction_and_check_can_fail() -> None:
    found = object_matchers('max(kube_hpa{horizontalpodautoscaler=~"keda-hpa-.+", statefulset!="x"})')
    assert found == [("horizontalpodautoscaler", "=~", "keda-hpa-.+"), ("statefulset", "!=", "x")]
    assert not any(re.fullmatch("keda-hpa-.+", n) for n in {"lf-runtime", "lf-ide"})


@pytest.mark.parametrize(("where", "expr"), _rule_exprs() + _dashboard_exprs(), ids=lambda v: str(v)[:60])
def test_object_matchers_match_rendered_objects(where: str, expr: str) -> None:
    names = rendered_names()
    for label, op, value in object_matchers(expr):
        if op not in ("=", "=~") or "$" in value:
            continue  # negative matchers and dashboard variables select nothing by themselves
        kind = OBJECT_LABELS[label]
        pattern = value if op == "=~" else re.escape(value)
        assert any(re.fullmatch(pattern, n) for n in names[kind]), (
            f"{where}: {label}{op}{value!r} matches no {kind} the charts render ({sorted(names[kind])})"
        )


def test_promtool_series_name_rendered_objects() -> None:
    series_re = re.compile(r"^\s*-\s*series:\s*'?([a-zA-Z_:][\w:]*)\{([^}]*)\}")
    label_re = re.compile(r'(\w+)="([^"]*)"')
    problems = []
    for f in sorted((ROOT / "alerts" / "tests").glob("*.test.yaml")):
        for line in f.read_text().splitlines():
            m = series_re.match(line)
            if not m:
                continue
            labels = dict(label_re.findall(m.group(2)))
            for label, kind in OBJECT_LABELS.items():
                if label in labels and "namespace" in labels:
                    names = rendered_names(labels["namespace"])[kind]
                    if labels[label] not in names:
                        problems.append(f"{f.name}: {m.group(1)} {label}={labels[label]!r} not in {sorted(names)}")
    assert not problems, "\n".join(problems)
