"""release: every chart's README is generated from its values.yaml (helm-docs), up to date, every key described."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness.paths import CHARTS, tool

pytestmark = pytest.mark.release

# the same flags as `make docs`
HELM_DOCS_ARGS = ["--sort-values-order", "file", "--skip-version-footer"]


def _helm_docs(root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm-docs"), "--chart-search-root", str(root), *HELM_DOCS_ARGS, *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of charts/ with freshly generated READMEs."""
    root = tmp_path_factory.mktemp("docs") / "charts"
    shutil.copytree(CHARTS, root, ignore=shutil.ignore_patterns("charts", "tmpcharts", "README.md"))
    proc = _helm_docs(root)
    assert proc.returncode == 0, proc.stderr
    return root


def chart_dirs() -> list[str]:
    return sorted(p.parent.name for p in CHARTS.glob("*/Chart.yaml"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("chart", chart_dirs())
def test_readme_is_current(chart: str, regenerated: Path) -> None:
    committed = CHARTS / chart / "README.md"
    assert committed.exists(), f"{chart}: README.md missing; run `make docs`"
    fresh = (regenerated / chart / "README.md").read_text()
    assert committed.read_text() == fresh, f"{chart}: README.md is stale; run `make docs` and commit"


def undocumented(readme: str) -> list[str]:
    """Keys of a helm-docs values table whose description cell is empty."""
    rows = [line.split("|") for line in readme.splitlines() if line.startswith("| ") and line.count("|") >= 5]
    return [cells[1].strip() for cells in rows[1:] if not cells[-2].strip()]


@pytest.mark.parametrize("chart", chart_dirs())
def test_every_value_is_documented(chart: str, regenerated: Path) -> None:
    """Every values key carries a `# --` description (helm-docs leaves the cell empty otherwise)."""
    missing = undocumented((regenerated / chart / "README.md").read_text())
    assert not missing, f"{chart}: values without a '# --' description: {missing}"
