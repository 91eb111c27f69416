"""End to end, the GitOps way: the dev profile rendered with `helm template` and applied with `kubectl apply`, as
Argo CD and `helm template | kubectl apply` pipelines do, running for real on the local cluster's real node.

Offline there is no `lookup`: a chart that generated its passwords at render time would rotate them at every sync,
and Langflow's LANGFLOW_SECRET_KEY with them (its stored variables could no longer be decrypted). Here the same
values render the same bytes, the secret generator Job (a plain Job under kubectl) makes the Secrets once, and a
second sync changes nothing: an API key Langflow stored (encrypted with that key) before it still decrypts in a
restarted IDE.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator

import pytest
import yaml

from tests.harness import realplatform as rp
from tests.harness.cluster import Cluster
from tests.harness.helm import SECRET_SPEC_LABEL
from tests.harness.node import RealNode

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]
RELEASE = "lf"
# the IDE and its database are what a rotated secret breaks; the runtime and the broker (proven by test_e2e.py)
# stay off to keep the second platform light; their Secrets' specs are rendered and generated all the same
VALUES = {"runtime.enabled": False, "broker.enabled": False}


def generated_secrets(kube: Cluster, ns: str) -> dict[str, str]:
    """name -> digest of the data of every Secret the secret generator made in the namespace."""
    out = kube.kubectl("get", "secrets", "-n", ns, "-l", "langflow-platform.dev/generated-by=secret-generator",
                       "-o", "json").stdout  # fmt: skip
    items = json.loads(out)["items"]
    return {i["metadata"]["name"]: hashlib.sha256(json.dumps(i["data"], sort_keys=True).encode()).hexdigest()
            for i in items}  # fmt: skip


@pytest.fixture(scope="module")
def synced(kube: Cluster, real_node: RealNode | None) -> Iterator[tuple[rp.Release, str]]:
    ns = f"gitops-{secrets.token_hex(3)}"
    kube.create_namespace(ns, restricted=True)
    text = rp.render(kube, RELEASE, ns, set_values=VALUES)
    yield rp.apply_and_wait(kube, ns, text), text
    kube.delete_namespace(ns, wait=False)


def test_two_renders_are_identical_and_secrets_are_made_in_the_cluster(
    kube: Cluster, synced: tuple[rp.Release, str]
) -> None:
    release, text = synced
    again = rp.render(kube, RELEASE, release.namespace, set_values=VALUES)
    assert again == text, "a second render differs: a sync would change it"
    assert "kind: Secret\n" not in text, "the render carries a Secret: its data would be whatever this render made"
    specs = {json.loads(d["data"]["spec.json"])["name"] for d in yaml.safe_load_all(text)
             if d and d["kind"] == "ConfigMap" and SECRET_SPEC_LABEL in d["metadata"]["labels"]}  # fmt: skip
    made = generated_secrets(kube, release.namespace)
    assert specs and specs == set(made), f"specs {sorted(specs)}, the secret generator Job made {sorted(made)}"


def test_a_second_sync_rotates_nothing_and_stored_variables_still_decrypt(
    kube: Cluster, synced: tuple[rp.Release, str]
) -> None:
    release, _ = synced
    url = release.ide_url()
    rp.wait_healthy(url, timeout=300)
    # Langflow stores API keys encrypted with LANGFLOW_SECRET_KEY (Fernet) and lists them decrypted, masked after
    # 8 characters; a key it can no longer decrypt is listed as its ciphertext ("gAAAAA...")
    with rp.api_session(url, *release.login()) as s:
        r = s.post(f"{url}/api/v1/api_key/", json={"name": f"gitops-{secrets.token_hex(3)}"}, timeout=30)
        assert r.status_code == 200, r.text[:300]
        created = r.json()
    assert created["api_key"].startswith("sk-"), created
    before = generated_secrets(kube, release.namespace)

    # the next sync: the same render applied again (Argo CD re-runs its PreSync hooks; here the Job is re-created)
    kube.kubectl("delete", "job", "-n", release.namespace, "-l", "app.kubernetes.io/component=secret-generator",
                 "--wait=true", timeout=120)  # fmt: skip
    rp.apply_and_wait(kube, release.namespace, rp.render(kube, RELEASE, release.namespace, set_values=VALUES))
    kube.kubectl("wait", "job", "-n", release.namespace, "-l", "app.kubernetes.io/component=secret-generator",
                 "--for=condition=Complete", "--timeout=180s", timeout=200)  # fmt: skip
    job_log = kube.kubectl("logs", "-n", release.namespace, "-l", "app.kubernetes.io/component=secret-generator",
                           "--tail=50").stdout  # fmt: skip
    assert "kept Secret" in job_log and "created Secret" not in job_log, job_log
    assert generated_secrets(kube, release.namespace) == before, "the second sync changed a generated Secret"

    # a new IDE process (same LANGFLOW_SECRET_KEY) decrypts the API key stored before the sync
    kube.kubectl("rollout", "restart", f"deployment/{release.ide_deployment()['metadata']['name']}",
                 "-n", release.namespace)  # fmt: skip
    kube.kubectl("rollout", "status", f"deployment/{release.ide_deployment()['metadata']['name']}",
                 "-n", release.namespace, "--timeout=600s", timeout=620)  # fmt: skip
    rp.wait_healthy(url, timeout=300)
    with rp.api_session(url, *release.login()) as s:
        listed = s.get(f"{url}/api/v1/api_key/", timeout=30).json()["api_keys"]
        mine = next(k for k in listed if k["id"] == created["id"])
        assert mine["api_key"][:8] == created["api_key"][:8], f"the stored API key no longer decrypts: {mine}"
        r = s.get(f"{url}/api/v1/flows/", headers={"x-api-key": created["api_key"]}, timeout=30)
        assert r.status_code == 200, f"the API key made before the sync is refused: {r.status_code} {r.text[:200]}"
