"""Shared fixtures and options of the harness.

- `--cluster local|kind|existing` picks the cluster the cluster/scaling layers use (see tests/harness/cluster.py).
- With CI=true a skipped test is reported as failed: CI installs every tool and server, so a skip hides a gap.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.harness import helm
from tests.harness.paths import in_ci, profiles

pytest_plugins = ["tests.harness.fixtures"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("langflow-platform")
    group.addoption(
        "--cluster",
        choices=("local", "kind", "existing"),
        default=os.environ.get("LFP_CLUSTER", "local"),
        help="local: control plane started from .tools (default); kind: a kind cluster; existing: $KUBECONFIG",
    )
    group.addoption(
        "--kubeconfig-path", default=os.environ.get("KUBECONFIG", ""), help="kubeconfig for --cluster existing"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `last` (they tear down what the session shares, e.g. the real node) run after all others."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before the first test: on the local cluster, build and import the real node's images when a collected test
    needs the cluster. A cold build takes minutes (6 measured, 2.5 GB of Langflow), which no test's timeout should
    pay; warm, this reuses the cached archives and containerd's imports in seconds."""
    config = session.config
    if config.getoption("--cluster") != "local" or config.option.collectonly:
        return
    if not any("kube" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from tests.harness.node import prepare_images

    reporter = config.pluginmanager.get_plugin("terminalreporter")
    prepare_images(progress=reporter.write_line if reporter is not None else print)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.fixture(scope="session")
def rendered_profiles() -> dict[str, helm.Manifest]:
    """Every values/ profile rendered once through the umbrella chart."""
    return {p: helm.render_profile(p) for p in profiles()}


@pytest.fixture(params=profiles())
def profile(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def manifest(profile: str, rendered_profiles: dict[str, helm.Manifest]) -> helm.Manifest:
    return rendered_profiles[profile]
