"""pytest fixtures for the cluster and scaling layers (registered from tests/conftest.py via pytest_plugins).

- `kube` (session): the cluster picked by `--cluster local|kind|existing`, with the KEDA, cert-manager,
  CloudNativePG and Prometheus Operator CRDs installed first. `local` starts the control plane of
  tests/harness/cluster.py in a temp dir, joins its real node (where the umbrella's secret generator Job runs),
  and stops both at the end of the session.
- `namespace_factory`: fresh namespaces labelled for Pod Security "restricted", deleted after the test.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator

import pytest

from .cluster import Cluster, LocalCluster, cluster_for
from .node import RealNode


def _progress(msg: str) -> None:
    print(f"cluster: {msg}", flush=True)


@pytest.fixture(scope="session")
def kube(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    kind = request.config.getoption("--cluster")
    kubeconfig = request.config.getoption("--kubeconfig-path") or None
    with cluster_for(kind, kubeconfig=kubeconfig, progress=_progress) as cluster:
        cluster.install_crds()
        if cluster.kind == "local" and cluster.workdir is not None:
            # the umbrella's secret generator Job runs on it (Cluster._placed): every release needs it
            LocalCluster(cluster.workdir, progress=_progress).start_node()
        yield cluster


@pytest.fixture(scope="session")
def real_node(kube: Cluster) -> RealNode | None:
    """The local cluster's real node, started on first use (images built or reused, then imported).
    None on kind/existing, where every node is real already."""
    if kube.kind != "local" or kube.workdir is None:
        return None
    return LocalCluster(kube.workdir, progress=_progress).start_node()


@pytest.fixture
def namespace_factory(kube: Cluster) -> Iterator[Callable[[str], str]]:
    """Call with a prefix; returns the name of a new restricted namespace (deleted when the test ends)."""
    made: list[str] = []

    def make(prefix: str) -> str:
        name = f"{re.sub(r'[^a-z0-9-]', '-', prefix.lower())[:40]}-{secrets.token_hex(3)}"
        kube.create_namespace(name, restricted=True)
        made.append(name)
        return name

    yield make
    for name in made:
        kube.delete_namespace(name, wait=False)
