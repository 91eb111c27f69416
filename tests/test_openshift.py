"""openshift: global.compatibility.openshift.adaptSecurityContext, rendered and run with an arbitrary uid.

OpenShift's restricted-v2 SCC runs a pod that sets no ids as a uid from the namespace's range in group 0, and
rejects a pod that sets ids outside it. Rendered: with `force` (or `auto` on a cluster serving
security.openshift.io) no pod or container of any profile sets runAsUser/runAsGroup/fsGroup, and every seccomp
profile is one restricted-v2 allows. Run: the dev profile's IDE, runtime Langflow and worker start under the pod
contract as such a uid (real Langflow 1.13 on PostgreSQL, the worker on RabbitMQ), and a flow runs through the
queue; the same harness refuses the unadapted render, whose fixed ids the SCC would refuse.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import requests

from loadtest import local, queue
from tests.harness import helm
from tests.harness.langflow import LangflowError, langflow_process
from tests.harness.paths import profiles

pytestmark = pytest.mark.servers

FORCE = {"global.compatibility.openshift.adaptSecurityContext": "force"}
IDS = ("runAsUser", "runAsGroup", "fsGroup")


def security_contexts(m: helm.Manifest) -> list[tuple[str, dict[str, Any]]]:
    """(where, securityContext) of every pod and container the release renders."""
    out = []
    for w in m.workloads():
        spec = (
            w["spec"]["template"]["spec"]
            if w["kind"] != "CronJob"
            else w["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        )
        name = f"{w['kind']}/{w['metadata']['name']}"
        out.append((name, spec.get("securityContext") or {}))
        for c in [*(spec.get("initContainers") or []), *spec["containers"]]:
            out.append((f"{name}/{c['name']}", c.get("securityContext") or {}))
    return out


@pytest.mark.parametrize("profile", profiles())
def test_adapted_pods_set_no_ids_and_only_allowed_seccomp(profile: str) -> None:
    plain = security_contexts(helm.render_profile(profile))
    assert any(k in sc for _w, sc in plain for k in IDS), f"{profile}: the unadapted render sets ids (the control)"
    for how in ({"set_values": FORCE}, {"api_versions": ["security.openshift.io/v1"]}):
        adapted = security_contexts(helm.render_profile(profile, **how))
        assert len(adapted) == len(plain)
        fixed = [(w, {k: sc[k] for k in IDS if k in sc}) for w, sc in adapted if any(k in sc for k in IDS)]
        assert not fixed, f"{profile} ({how}): ids restricted-v2 would reject: {fixed}"
        seccomp = {(sc.get("seccompProfile") or {}).get("type") for _w, sc in adapted} - {None}
        assert seccomp <= {"RuntimeDefault"}, seccomp
        assert all(sc.get("runAsNonRoot") for w, sc in adapted if "/" not in w.split("/", 1)[1]), "pods stay non-root"


@pytest.mark.timeout(900)
def test_ide_runtime_and_worker_run_as_an_arbitrary_uid_in_group_0() -> None:
    uid = random.randint(1_000_600_000, 1_000_699_999)  # an OpenShift namespace's range
    with pytest.raises(LangflowError, match="restricted-v2"), langflow_process(helm.render_profile("dev"), "ide",
                                                                               assigned_uid=uid):  # fmt: skip
        pass
    with local.installation(profile="dev", baseline=False, set_values=FORCE, assigned_uid=uid) as inst:
        ours = inst.ours
        assert ours is not None
        for p in ours.processes:
            assert p.contract is not None and (p.contract.uid, p.contract.gid) == (uid, 0), p.name
        health = requests.get(f"{ours.ide.base_url}/health_check", timeout=30).json()
        assert health.get("status") == "ok" and health.get("db") == "ok", health
        assert ours.ide.access_token(), "the superuser logs in on the IDE running as the arbitrary uid"
        results = queue.burst(ours.amqp_url, ours.queue, "echo", 3, timeout=240)
        assert [r.status for r in results] == ["ok"] * 3, [(r.status, r.error) for r in results]
