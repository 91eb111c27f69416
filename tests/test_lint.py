"""schema: the linters that gate every change. helm lint --strict on every chart and on the umbrella with every
profile; chart-testing (ct lint, driven by ct.yaml: Chart.yaml schema, yamllint with tools/lintconf.yaml,
helm lint of each chart and of the umbrella once per charts/langflow-platform/ci/*-values.yaml); ruff check and
ruff format --check on the Python.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.harness.paths import CHARTS, ROOT, TOOLS, UMBRELLA, profile_file, profiles, tool

pytestmark = pytest.mark.schema

ALL_CHARTS = sorted(p.name for p in CHARTS.glob("langflow-*") if (p / "Chart.yaml").exists())
PYTHON_DIRS = [d for d in ("tests", "tools", "loadtest", "dashboards", "worker") if (ROOT / d).is_dir()]


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
