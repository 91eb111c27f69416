"""policy: the TLS options exist and do what they say. Ingress TLS (a certificate Secret per host, cert-manager's
issuer annotation) and the database connection's sslmode reach every Langflow process; an sslmode PostgreSQL
does not know is refused by the schema.
"""

from __future__ import annotations

import pytest

from tests.harness import helm

pytestmark = pytest.mark.policy

HOST = "langflow.example.com"


def langflow_env(manifest: helm.Manifest, name: str) -> dict[str, str]:
    """workload/container -> value of env var `name`, for every container that sets it."""
    out = {}
    for w in manifest.workloads():
        spec = w["spec"]["template"]["spec"] if w["kind"] != "CronJob" else {}
        for c in spec.get("containers") or []:
            for e in c.get("env") or []:
                if e["name"] == name and "value" in e:
                    out[f"{w['kind']}/{w['metadata']['name']}/{c['name']}"] = e["value"]
    return out


def test_ingress_tls_with_cert_manager() -> None:
    m = helm.render_profile(
        "prod",
        set_values={
            "ide.ingress.enabled": True,
            "ide.ingress.host": HOST,
            "ide.ingress.tls.enabled": True,
            "ide.ingress.tls.clusterIssuer": "letsencrypt-prod",
        },
    )
    ingresses = m.of_kind("Ingress")
    assert ingresses, "ide.ingress.enabled renders no Ingress"
    for ing in ingresses:
        where = f"Ingress/{ing['metadata']['name']}"
        hosts = {r.get("host") for r in ing["spec"].get("rules") or []}
        tls = ing["spec"].get("tls") or []
        assert tls, f"{where}: tls.enabled but spec.tls is empty"
        covered = {h for t in tls for h in t.get("hosts") or []}
        assert hosts <= covered, f"{where}: hosts {hosts - covered} served without TLS"
        assert all(t.get("secretName") for t in tls), f"{where}: a TLS entry without secretName: {tls}"
        ann = ing["metadata"].get("annotations") or {}
        assert ann.get("cert-manager.io/cluster-issuer") == "letsencrypt-prod", f"{where}: no issuer annotation"


def test_ingress_without_tls_has_no_tls_block() -> None:
    m = helm.render_profile(
        "prod", set_values={"ide.ingress.enabled": True, "ide.ingress.host": HOST, "ide.ingress.tls.enabled": False}
    )
    assert m.of_kind("Ingress"), "ide.ingress.enabled renders no Ingress"
    assert all(not i["spec"].get("tls") for i in m.of_kind("Ingress")), "tls.enabled false still renders spec.tls"


@pytest.mark.parametrize("sslmode", ["require", "verify-full"])
def test_database_sslmode_reaches_langflow(sslmode: str) -> None:
    m = helm.render_profile("prod", set_values={"global.database.sslmode": sslmode})
    urls = langflow_env(m, "LANGFLOW_DATABASE_URL")
    assert urls, "no container sets LANGFLOW_DATABASE_URL"
    wrong = {k: v for k, v in urls.items() if not v.endswith(f"sslmode={sslmode}")}
    assert not wrong, f"global.database.sslmode={sslmode} did not reach: {wrong}"


def test_database_sslmode_refuses_unknown_mode() -> None:
    with pytest.raises(helm.HelmError, match="sslmode"):
        helm.render_profile("prod", set_values={"global.database.sslmode": "encrypted"})
