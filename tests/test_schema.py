"""schema: every chart's values.schema.json is a valid, closed draft-07 schema that accepts every profile and
rejects the bad-values corpus (tests/bad-values/*.yaml) with a message naming the broken key.

Each corpus file starts with a header the test reads:

    # breaks: ide.autoscaling.minReplicas > maxReplicas; expect: minReplicas
    # profile: prod            (optional: the profile the bad values are layered on; default dev)

`breaks` names the key (its last segment must appear in helm's message), `expect` a fragment of the message.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import BAD_VALUES, CHARTS, ROOT, UMBRELLA, profile_file, profiles

pytestmark = pytest.mark.schema

SCHEMA_CHARTS = sorted(p.parent.name for p in CHARTS.glob("langflow-*/values.schema.json"))
APP_CHARTS = sorted(
    p.name
    for p in CHARTS.glob("langflow-*")
    if (p / "Chart.yaml").exists() and yaml.safe_load((p / "Chart.yaml").read_text()).get("type") != "library"
)
MIN_BAD_VALUES = 30
# extra values layered under every bad-values file (empty; a local override for debugging via env)
BASE_EXTRA: list[Path] = [Path(p) for p in os.environ.get("LFP_BAD_VALUES_BASE", "").split(os.pathsep) if p]


def load_schema(chart: str) -> dict[str, Any]:
    return json.loads((CHARTS / chart / "values.schema.json").read_text())


def load_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of values files: maps merge key by key, everything else is replaced."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def schema_errors(schema: dict[str, Any], instance: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<top>'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]


def open_objects(node: Any, path: str = "") -> list[str]:
    """Paths of schema objects that list properties but accept unknown ones (open by design: global, shared by
    every chart, and extraObjects, whose items are any Kubernetes object)."""
    found: list[str] = []
    if isinstance(node, dict):
        by_design = "global" in path or path.startswith("properties.extraObjects")
        if "properties" in node and node.get("additionalProperties", True) is True and not by_design:
            found.append(path or "<top>")
        for k, v in node.items():
            if k == "if":  # a condition, not an object of the values: it must stay open to match
                continue
            found += open_objects(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += open_objects(v, f"{path}[{i}]")
    return found


def test_every_application_chart_has_a_schema() -> None:
    missing = set(APP_CHARTS) - set(SCHEMA_CHARTS)
    assert not missing, f"charts without values.schema.json: {sorted(missing)}"


@pytest.mark.parametrize("chart", SCHEMA_CHARTS)
def test_schema_is_valid_draft7(chart: str) -> None:
    schema = load_schema(chart)
    assert schema.get("$schema", "").startswith("http://json-schema.org/draft-07/schema"), (
        f"{chart}: $schema must name draft-07, got {schema.get('$schema')!r}"
    )
    jsonschema.Draft7Validator.check_schema(schema)


def test_kubernetes_definitions_are_the_apis() -> None:
    """The Kubernetes types the schemas refer to (extraVolumes, sidecars, ...) are the definitions of the pinned
    Kubernetes version's OpenAPI, as tools/k8s_values_schema.py copies them (`make schemas`): none is stale or
    hand-edited."""
    versions = dict(
        line.split("=", 1) for line in (ROOT / "tools" / "versions.env").read_text().splitlines() if "=" in line
    )
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    swagger = Path(modcache) / f"k8s.io/kubernetes@{versions['KUBERNETES_VERSION']}" / "api/openapi-spec/swagger.json"
    assert swagger.exists(), f"{swagger} missing: `make tools` downloads the Kubernetes module"
    schemas = sorted(str(p) for p in CHARTS.glob("langflow-*/values.schema.json"))
    tool_ = ROOT / "tools" / "k8s_values_schema.py"
    proc = subprocess.run([sys.executable, str(tool_), "--openapi", str(swagger), "--check", *schemas],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    refs = {c: json.dumps(load_schema(c)).count('"#/definitions/io.k8s.') for c in ("langflow-ide", "langflow-runtime")}
    assert all(refs.values()), f"no Kubernetes type in the extension points' schemas: {refs}"


@pytest.mark.parametrize("chart", SCHEMA_CHARTS)
def test_schema_closes_every_owned_object(chart: str) -> None:
    schema = load_schema(chart)
    assert schema.get("additionalProperties") is False, f"{chart}: top level must set additionalProperties: false"
    assert not open_objects(schema), f"{chart}: objects that accept unknown keys: {open_objects(schema)}"


@pytest.mark.parametrize("chart", SCHEMA_CHARTS)
def test_schema_accepts_chart_defaults(chart: str) -> None:
    errors = schema_errors(load_schema(chart), load_values(CHARTS / chart / "values.yaml"))
    assert not errors, f"{chart}/values.yaml does not pass its own schema:\n" + "\n".join(errors)


@pytest.mark.parametrize("chart", SCHEMA_CHARTS)
def test_schema_rejects_unknown_top_level_key(chart: str) -> None:
    values = load_values(CHARTS / chart / "values.yaml")
    values["notAKnownKey"] = True
    errors = schema_errors(load_schema(chart), values)
    assert any("notAKnownKey" in e for e in errors), f"{chart}: an unknown top-level key was accepted ({errors})"


def umbrella_components() -> dict[str, str]:
    """alias -> chart folder, from the umbrella's dependencies."""
    chart = yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())
    deps = chart.get("dependencies", [])
    return {d.get("alias", d["name"]): d["repository"].removeprefix("file://../") for d in deps if d.get("alias")}


@pytest.mark.parametrize("name", profiles())
def test_profile_passes_every_schema(name: str) -> None:
    """What helm checks at render time, with every error listed by chart and key."""
    umbrella = load_values(UMBRELLA / "values.yaml")
    prof = load_values(profile_file(name))
    merged = deep_merge(umbrella, prof)
    errors = [f"langflow-platform: {e}" for e in schema_errors(load_schema("langflow-platform"), merged)]
    for alias, chart in umbrella_components().items():
        if not (CHARTS / chart / "values.schema.json").exists():
            continue
        values = deep_merge(load_values(CHARTS / chart / "values.yaml"), merged.get(alias) or {})
        values["global"] = deep_merge(values.get("global") or {}, merged.get("global") or {})
        errors += [f"{alias} ({chart}): {e}" for e in schema_errors(load_schema(chart), values)]
    assert not errors, f"profile {name}:\n" + "\n".join(errors)


# --- the bad-values corpus ---------------------------------------------------------------------------------

HEADER = re.compile(r"^#\s*breaks:\s*(?P<breaks>[^;]+?)\s*;\s*expect:\s*(?P<expect>.+?)\s*$")
PROFILE = re.compile(r"^#\s*profile:\s*(?P<profile>[\w-]+)\s*$")


@dataclass(frozen=True)
class BadValues:
    path: Path
    breaks: str
    expect: str
    profile: str

    @property
    def key(self) -> str:
        """The broken key's last segment: the word helm's message must contain."""
        first = self.breaks.split()[0]
        return first.rstrip(".,:").split(".")[-1]


def parse_bad_values(path: Path) -> BadValues:
    lines = path.read_text().splitlines()
    match = HEADER.match(lines[0]) if lines else None
    if not match:
        raise ValueError(f"{path.name}: first line must be '# breaks: <key>; expect: <message fragment>'")
    prof = "dev"
    for line in lines[1:4]:
        if m := PROFILE.match(line):
            prof = m["profile"]
    return BadValues(path, match["breaks"], match["expect"], prof)


BAD_FILES = sorted(BAD_VALUES.glob("*.yaml"))


def test_bad_values_corpus_size() -> None:
    assert len(BAD_FILES) >= MIN_BAD_VALUES, f"{len(BAD_FILES)} bad-values files, want at least {MIN_BAD_VALUES}"


def test_bad_values_headers_parse() -> None:
    problems = []
    for path in BAD_FILES:
        try:
            bad = parse_bad_values(path)
            if bad.profile not in profiles():
                problems.append(f"{path.name}: unknown profile {bad.profile}")
            if not load_values(path):
                problems.append(f"{path.name}: sets no values")
        except (ValueError, yaml.YAMLError) as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def base_render() -> Callable[[str], str]:
    """Renders a base profile once (only the few the corpus uses); returns '' or helm's error."""
    cache: dict[str, str] = {}

    def render(name: str) -> str:
        if name not in cache:
            try:
                cache[name] = "" if helm.render_profile(name, values=BASE_EXTRA).objects else "rendered nothing"
            except helm.HelmError as e:
                cache[name] = e.stderr
        return cache[name]

    return render


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_values_rejected_naming_the_key(path: Path, base_render: Callable[[str], str]) -> None:
    bad = parse_bad_values(path)
    # the base profile renders on its own, so the failure below is caused by the bad values alone
    problem = base_render(bad.profile)
    assert not problem, f"{path.name}: its base profile {bad.profile} does not render by itself:\n{problem}"
    with pytest.raises(helm.HelmError) as err:
        helm.render_profile(bad.profile, values=[*BASE_EXTRA, path])
    message = err.value.stderr
    assert bad.expect.lower() in message.lower(), (
        f"{path.name} (breaks {bad.breaks}): helm's message lacks {bad.expect!r}:\n{message}"
    )
    assert bad.key.lower() in message.lower(), (
        f"{path.name} (breaks {bad.breaks}): helm's message does not name the key {bad.key!r}:\n{message}"
    )
