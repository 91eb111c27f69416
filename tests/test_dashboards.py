"""Grafana dashboards: generated from code without drift, valid for the SDK's models, importable as-is
(datasource variable), every query parses (promtool) and uses only metrics and labels from the catalogue.

No Grafana server runs here: its Go module is refused by the module proxy, so the dashboards are checked
against grafana-foundation-sdk's models (a decode/encode round trip keeps every key only if the schema knows it).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import generate
from tests.harness import metrics_catalogue as mc
from tests.harness.paths import ROOT, tool

pytestmark = pytest.mark.dashboards

DASHBOARD_FILES = sorted((ROOT / "dashboards").glob("*.json"))
EXPECTED_TITLES = {"Langflow Overview", "Kubernetes workloads", "PostgreSQL", "RabbitMQ", "KEDA autoscaling"}
# Grafana 11.6 / 12.x write schemaVersion 41; 39 is Grafana 11.0.
MIN_SCHEMA_VERSION = 39


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for p in dash.get("panels", []):
        yield p
        yield from p.get("panels", [])


def queries(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) of every panel target."""
    for p in panels(dash):
        for t in p.get("targets", []):
            yield p.get("title", "?"), t["expr"]


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> mc.Catalogue:
    return mc.cached(tmp_path_factory.getbasetemp())


def test_generated_json_matches_committed(tmp_path: Path) -> None:
    """Drift check: regenerating from dashboards/*.py gives exactly the committed JSON (`make dashboards`)."""
    generate.main(["--out", str(tmp_path)])
    fresh = {p.name: p.read_text() for p in sorted(tmp_path.glob("*.json"))}
    committed = {p.name: p.read_text() for p in DASHBOARD_FILES}
    assert fresh.keys() == committed.keys()
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"dashboards out of date, run `make dashboards`: {stale}"


def test_chart_ships_the_same_dashboards() -> None:
    shipped = {p.name: p.read_bytes() for p in sorted((generate.CHART_FILES / "dashboards").glob("*.json"))}
    assert shipped == {p.name: p.read_bytes() for p in DASHBOARD_FILES}, "run `make dashboards`"


def test_five_dashboards_with_unique_uids() -> None:
    dashes = [load(p) for p in DASHBOARD_FILES]
    assert {d["title"] for d in dashes} == EXPECTED_TITLES
    assert len({d["uid"] for d in dashes}) == len(dashes)
    for p, d in zip(DASHBOARD_FILES, dashes, strict=True):
        assert p.name == f"{d['uid']}.json"


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_importable_as_is(path: Path) -> None:
    """A current schemaVersion, a prometheus datasource variable, every panel and query bound to it, no
    `__inputs` placeholders, unique panel ids."""
    d = load(path)
    assert d["schemaVersion"] >= MIN_SCHEMA_VERSION
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "__inputs" not in d and "${DS_" not in path.read_text()
    ids = [p["id"] for p in panels(d)]
    assert len(ids) == len(set(ids))
    for p in panels(d):
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], f"{p['title']}: no query"
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert 'namespace=~"$namespace"' in t["expr"], f"{p['title']}: query ignores $namespace"


def _drop_empty(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _drop_empty(v) for k, v in x.items() if v != {}}
    if isinstance(x, list):
        return [_drop_empty(v) for v in x]
    return x


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.stem)
def test_valid_for_the_sdk_models(path: Path) -> None:
    """Decode with the SDK's Dashboard model (typed panels and Prometheus queries) and encode again: every key
    survives only if the schema knows it."""
    register_default_plugins()
    data = load(path)
    model = Dashboard.from_json(data)
    again = json.loads(json.dumps(model, cls=JSONEncoder))
    assert _drop_empty(again) == _drop_empty(data)
    assert {type(t).__module__ for p in model.panels or [] for t in (getattr(p, "targets", None) or [])} == {
        "grafana_foundation_sdk.models.prometheus"
    }


@pytest.mark.timeout(120)
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """Each panel query (Grafana variables substituted) goes through Prometheus' own parser."""
    rules = []
    for path in DASHBOARD_FILES:
        for i, (_, expr) in enumerate(queries(load(path))):
            rules.append(
                {"record": f"dashboard:{path.stem.replace('-', '_')}:q{i}", "expr": mc.grafana_to_promql(expr)}
            )
    f = tmp_path / "dashboard-queries.rules.yaml"
    f.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    proc = subprocess.run([tool("promtool"), "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


@pytest.mark.timeout(240)
def test_panels_use_only_metrics_and_labels_from_the_catalogue(catalogue: mc.Catalogue) -> None:
    problems: dict[str, list[str]] = {}
    checked = 0
    for path in DASHBOARD_FILES:
        for title, expr in queries(load(path)):
            checked += len(mc.selectors(expr))
            p = catalogue.problems(expr)
            if p:
                problems[f"{path.stem} / {title}"] = p
    assert not problems, problems
    assert checked > 100
