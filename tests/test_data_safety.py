"""Data safety at the operator seam: `helm uninstall` must not garbage-collect the HA database's volumes.

CloudNativePG makes the `Cluster` the controlling owner of each instance's PVC. When helm deletes the Cluster, the
API server's garbage collector (real, in the local control plane's controller-manager) deletes every PVC it owns.
The operator is not needed to prove it: the test gives a PVC the same owner reference the operator gives, and a
control PVC owned by an object that is deleted shows the collector acts within the wait.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.harness.cluster import Cluster
from tests.harness.paths import CHARTS

pytestmark = pytest.mark.cluster


def _owned_pvc(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    """A PVC owned the way CloudNativePG owns an instance's volume (controller owner reference)."""
    meta = owner["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "ownerReferences": [
                {
                    "apiVersion": owner["apiVersion"],
                    "kind": owner["kind"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _get(kube: Cluster, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    proc = kube.kubectl("get", kind, name, "-n", ns, "-o", "json", "--ignore-not-found", check=False)
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.mark.timeout(300)
def test_uninstall_keeps_the_ha_cluster_and_the_volumes_it_owns(
    kube: Cluster, namespace_factory: Callable[[str], str]
) -> None:
    ns = namespace_factory("keep-ha")
    release = "db"
    chart = CHARTS / "langflow-database"
    kube.helm("install", release, str(chart), "-n", ns, "--set", "mode=ha", "--wait", "--timeout", "2m", timeout=300)
    manifest = [d for d in yaml.safe_load_all(kube.helm("get", "manifest", release, "-n", ns)) if d]
    cluster_name = next(d["metadata"]["name"] for d in manifest if d["kind"] == "Cluster")
    cnpg = _get(kube, "clusters.postgresql.cnpg.io", cluster_name, ns)
    assert cnpg is not None
    data_pvc = f"{cluster_name}-1"
    # the control: a PVC owned by a ConfigMap that the test deletes; the collector must remove it
    control_owner_name = f"control-{secrets.token_hex(3)}"
    kube.apply([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": control_owner_name, "namespace": ns}}])
    control_owner = _get(kube, "configmap", control_owner_name, ns)
    assert control_owner is not None
    control_owner.setdefault("apiVersion", "v1")
    kube.apply([_owned_pvc(data_pvc, cnpg), _owned_pvc("control-pvc", control_owner)])

    kube.helm("uninstall", release, "-n", ns, "--wait", "--timeout", "2m", timeout=300)
    kube.kubectl("delete", "configmap", control_owner_name, "-n", ns)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _get(kube, "pvc", "control-pvc", ns) is not None:
        time.sleep(1)
    assert _get(kube, "pvc", "control-pvc", ns) is None, "the garbage collector did not act within 60 s"
    time.sleep(5)  # the collector has had its turn; the database's objects must still be there
    assert _get(kube, "clusters.postgresql.cnpg.io", cluster_name, ns) is not None, (
        f"helm uninstall deleted Cluster {cluster_name}: the garbage collector then deletes every instance's PVC"
    )
    assert _get(kube, "pvc", data_pvc, ns) is not None, f"PVC {data_pvc} (the database's data) was deleted"
