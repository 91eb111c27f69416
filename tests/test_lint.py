"""schema: the linters that gate every change. helm lint --strict on every chart and on the umbrella with every
profile; chart-testing (ct lint, driven by ct.yaml: Chart.yaml schema, yamllint with tools/lintconf.yaml,
helm lint of each chart and of the umbrella once per charts/langflow-platform/ci/*-values.yaml); ruff check and
ruff format --check on the Python; actionlint on the GitHub workflows, and the release workflow pushes the
image the runtime chart names by default.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import CHARTS, ROOT, TOOLS, UMBRELLA, profile_file, profiles, tool

pytestmark = pytest.mark.schema

ALL_CHARTS = sorted(p.name for p in CHARTS.glob("langflow-*") if (p / "Chart.yaml").exists())
PYTHON_DIRS = [
    d for d in ("tests", "tools", "loadtest", "dashboards", "worker", "images", "charts") if (ROOT / d).is_dir()
]


def run(cmd: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # ct calls helm, yamllint and yamale by name: the pinned ones first
    env["PATH"] = os.pathsep.join([str(TOOLS / "bin"), str(ROOT / ".venv" / "bin"), env.get("PATH", "")])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def venv_tool(name: str) -> str:
    """A tool of the harness venv (ruff), found even when .venv/bin is not on PATH."""
    path = ROOT / ".venv" / "bin" / name
    return str(path) if path.exists() else tool(name)


def lint_findings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("[ERROR]", "[WARNING]"))]


@pytest.mark.parametrize("chart", ALL_CHARTS)
def test_helm_lint_strict_chart(chart: str) -> None:
    proc = run([tool("helm"), "lint", "--strict", str(CHARTS / chart)])
    assert proc.returncode == 0, f"helm lint --strict {chart}:\n{proc.stdout}{proc.stderr}"
    assert not lint_findings(proc.stdout), f"{chart}: " + "\n".join(lint_findings(proc.stdout))


@pytest.mark.parametrize("name", profiles())
def test_helm_lint_strict_profile(name: str) -> None:
    proc = run([tool("helm"), "lint", "--strict", str(UMBRELLA), "-f", str(profile_file(name))])
    assert proc.returncode == 0, f"helm lint --strict with profile {name}:\n{proc.stdout}{proc.stderr}"
    assert not lint_findings(proc.stdout), f"profile {name}: " + "\n".join(lint_findings(proc.stdout))


def test_umbrella_ci_values_cover_every_profile() -> None:
    """ct lints the umbrella once per ci/*-values.yaml; each must be a profile, and every profile must be there."""
    ci = UMBRELLA / "ci"
    have = {p.name.removesuffix("-values.yaml"): p for p in ci.glob("*-values.yaml")}
    assert set(have) == set(profiles()), f"ci/ files {sorted(have)} != profiles {profiles()}"
    for name, path in have.items():
        assert path.resolve() == profile_file(name).resolve(), f"{path} is not values/{name}.yaml"


@pytest.mark.timeout(600)
def test_ct_lint_all() -> None:
    proc = run([tool("ct"), "lint", "--config", "ct.yaml", "--all"], timeout=580)
    out = proc.stdout + proc.stderr
    failed = [line for line in out.splitlines() if "✖" in line or "Error" in line or line.startswith(("\t", "[ERROR]"))]
    assert proc.returncode == 0, "ct lint --config ct.yaml --all failed:\n" + ("\n".join(failed) or out[-4000:])


def test_ruff_check() -> None:
    proc = run([venv_tool("ruff"), "check", *PYTHON_DIRS])
    assert proc.returncode == 0, f"ruff check:\n{proc.stdout}{proc.stderr}"


def test_ruff_format() -> None:
    proc = run([venv_tool("ruff"), "format", "--check", *PYTHON_DIRS])
    assert proc.returncode == 0, f"ruff format --check (run `ruff format`):\n{proc.stdout}{proc.stderr}"


# --- GitHub Actions workflows ---------------------------------------------------------------------------------

WORKFLOWS = ROOT / ".github" / "workflows"
RELEASE = WORKFLOWS / "release.yaml"
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def actionlint(*files: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(TOOLS / "bin"), env.get("PATH", "")])  # shellcheck, when present, by name
    cmd = [tool("actionlint"), "-no-color", *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def test_actionlint_workflows() -> None:
    files = sorted(WORKFLOWS.glob("*.yaml"))
    assert {f.name for f in files} >= {"ci.yaml", "release.yaml"}, f"workflows: {[f.name for f in files]}"
    proc = actionlint(*files)
    assert proc.returncode == 0, f"actionlint {' '.join(f.name for f in files)}:\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize(
    ("breakage", "expect"),
    [
        (("run: make -o tools deps package", "run: echo ${{ steps.nope.outputs.x }}"), '"nope" is not defined'),
        (("runs-on: ubuntu-latest", "runs-on: ubuntu-lastest"), "ubuntu-lastest"),
    ],
    ids=["undefined-step-output", "bad-runs-on"],
)
def test_actionlint_catches_a_broken_workflow(tmp_path: Path, breakage: tuple[str, str], expect: str) -> None:
    """A copy of the release workflow with one mistake fails actionlint: the lint above has teeth."""
    old, new = breakage
    text = RELEASE.read_text()
    assert old in text, f"{RELEASE.name} no longer contains {old!r}: update this test"
    broken = tmp_path / ".github" / "workflows" / "release.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    proc = actionlint(broken, cwd=tmp_path)
    assert proc.returncode != 0, f"actionlint passed a broken workflow ({new}):\n{proc.stdout}"
    assert expect in proc.stdout, f"actionlint did not name the mistake {expect!r}:\n{proc.stdout}"


def worker_version() -> str:
    return tomllib.loads((ROOT / "worker" / "pyproject.toml").read_text())["project"]["version"]


def released_worker_image() -> str:
    """The image reference the release workflow pushes for a tag v<worker version>: the build-push step's `tags`
    with the workflow's env and the version step's output substituted."""
    wf = yaml.safe_load(RELEASE.read_text())
    pushes = [
        (job, step)
        for job in wf["jobs"].values()
        for step in job["steps"]
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]
    assert len(pushes) == 1, f"{RELEASE.name}: want one docker/build-push-action step, found {len(pushes)}"
    job, push = pushes[0]
    assert push["with"].get("push") is True and push["with"]["file"] == "worker/Dockerfile"
    ids = {s.get("id") for s in job["steps"]}

    def value(m: re.Match[str]) -> str:
        expr = m[1]
        if expr.startswith("env."):
            return str(wf["env"][expr.removeprefix("env.")])
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.version", expr)
        assert step and step[1] in ids, f"{RELEASE.name}: tag expression {expr!r} is not the version step's output"
        return worker_version()

    tags = [t.strip() for t in str(push["with"]["tags"]).replace(",", "\n").splitlines() if t.strip()]
    assert len(tags) == 1, f"{RELEASE.name}: want one pushed tag, got {tags}"
    return EXPR.sub(value, tags[0])


@pytest.mark.timeout(120)
def test_chart_default_worker_image_is_the_released_one() -> None:
    """`helm template charts/langflow-runtime` names, for its worker container, the image the release workflow
    pushes for the worker's version: a fresh install pulls an image that exists."""
    m = helm.template(CHARTS / "langflow-runtime")
    sts = m.get("StatefulSet", "lf-runtime")
    images = {c["name"]: c["image"] for c in sts["spec"]["template"]["spec"]["containers"]}
    assert images["worker"] == released_worker_image(), f"chart default {images['worker']} is not what is released"
