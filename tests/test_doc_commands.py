"""release: what the docs tell operators to run or change works on this chart.

Every `helm install|upgrade|template` command of the READMEs, the chart READMEs and the alert runbooks is rendered
with its `-f` files and `--set` values (helm's own schema validation rejects a key that does not exist), and every
value key the runbooks and READMEs name in backticks (`runtime.keda.maxReplicaCount`) must exist in the values of
the chart it belongs to (the umbrella's, or a component's under its name).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import CHARTS, ROOT, UMBRELLA

pytestmark = pytest.mark.release

DOCS = [ROOT / "README.md", ROOT / "alerts" / "RUNBOOKS.md", *sorted(CHARTS.glob("*/README.md"))]
COMMAND = re.compile(r"helm (?:install|upgrade|template)\b(?:[^`\n\\]|\\\n)*")  # with \-continued lines
COMPONENTS = {"ide", "runtime", "broker", "database", "vectorstore", "monitoring"}
ROOTS = "global|secretGenerator|ide|runtime|broker|database|vectorstore|monitoring"
KEY = re.compile(rf"`((?:{ROOTS})(?:\.[A-Za-z][\w-]*)+)`")  # a whole code span: not `a.b=1`, not `x.io/v1`


def commands() -> list[tuple[str, str]]:
    """(where, command) of every documented helm command that installs or renders this repository's umbrella."""
    out = []
    for doc in DOCS:
        for m in COMMAND.finditer(doc.read_text()):
            if "charts/langflow-platform" in m.group(0):
                out.append((f"{doc.relative_to(ROOT)}: {m.group(0)[:60]}", m.group(0).replace("\\\n", " ")))
    return out


def render_args(command: str) -> list[str]:
    """`helm template` arguments for a documented command, against this checkout's umbrella."""
    words = [w for w in shlex.split(command.split("|")[0].split("#")[0], posix=True) if w]
    args = ["template", "lf", str(UMBRELLA), "-n", "langflow"]
    it = iter(words[2:])
    for w in it:
        if w in ("-f", "--values"):
            path = next(it)
            if "<" in path:  # a placeholder: the README's profile table names them all
                path = "values/prod.yaml"
            args += ["-f", str(ROOT / path)]
        elif w in ("--set", "--set-string"):
            args += [w, next(it)]
        elif w.startswith("--set="):
            args += ["--set", w.split("=", 1)[1]]
    return args


@pytest.mark.parametrize(("where", "command"), commands(), ids=[w for w, _ in commands()])
def test_documented_command_renders(where: str, command: str) -> None:
    helm.run(render_args(command), timeout=120)


def key_exists(key: str) -> bool:
    parts = key.split(".")
    if parts[0] in COMPONENTS:
        values: Any = yaml.safe_load((CHARTS / f"langflow-{parts[0]}" / "values.yaml").read_text())
        parts = parts[1:]
        umbrella = yaml.safe_load((UMBRELLA / "values.yaml").read_text()).get(key.split(".")[0], {})
    else:
        values, umbrella = yaml.safe_load((UMBRELLA / "values.yaml").read_text()), {}
    for tree in (values, umbrella):
        node = tree
        for p in parts:
            if not isinstance(node, dict) or p not in node:
                break
            node = node[p]
        else:
            return True
    return False


def chart_relative_keys(readme: Path) -> set[str]:
    """Keys a component chart's README names relative to its own values (`ha.recovery.enabled`), made absolute."""
    chart = readme.parent.name.removeprefix("langflow-")
    if chart not in COMPONENTS:
        return set()
    values = yaml.safe_load((readme.parent / "values.yaml").read_text())
    tops = "|".join(re.escape(k) for k in values if k != "global")  # global.* is the umbrella's (KEY)
    span = re.compile(rf"`((?:{tops})(?:\.[A-Za-z][\w-]*)+)`")
    return {f"{chart}.{m.group(1)}" for m in span.finditer(readme.read_text())}


def named_keys() -> list[tuple[str, str]]:
    found = {(str(d.relative_to(ROOT)), m.group(1)) for d in DOCS for m in KEY.finditer(d.read_text())}
    found |= {(str(d.relative_to(ROOT)), k) for d in DOCS if d.name == "README.md" for k in chart_relative_keys(d)}
    return sorted(found)


def test_the_docs_name_value_keys() -> None:
    assert len(named_keys()) >= 20, "the key scan finds (almost) nothing: is the pattern still right?"


@pytest.mark.parametrize(("doc", "key"), named_keys(), ids=[f"{d}:{k}" for d, k in named_keys()])
def test_named_value_key_exists(doc: str, key: str) -> None:
    assert key_exists(key), f"{doc} names `{key}`, which is no value of the chart"


def test_documented_commands_are_found() -> None:
    assert len(commands()) >= 5, f"only {len(commands())} documented helm commands found"


def test_a_wrong_key_is_caught() -> None:
    """The check has teeth: the key the runbook once named, and a --set of it, both fail."""
    assert not key_exists("runtime.autoscaling.maxReplicas")
    with pytest.raises(helm.HelmError):
        helm.run(render_args("helm upgrade lf charts/langflow-platform --set runtime.autoscaling.maxReplicas=20"))
