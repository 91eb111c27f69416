"""release + cluster: `helm install` the umbrella FROM the OCI registry into the local cluster; NOTES guide the user."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.harness import helm
from tests.harness.cluster import Cluster
from tests.harness.paths import UMBRELLA, profile_file
from tests.harness.registry import registry

pytestmark = [pytest.mark.release, pytest.mark.cluster]


def _version() -> str:
    return str(yaml.safe_load((UMBRELLA / "Chart.yaml").read_text())["version"])


@pytest.mark.timeout(900)
def test_install_from_oci_registry(kube: Cluster, namespace_factory: Callable[[str], str], tmp_path: Path) -> None:
    ns = namespace_factory("oci")
    helm.run(["package", str(UMBRELLA), "-d", str(tmp_path)])
    archive = tmp_path / f"langflow-platform-{_version()}.tgz"
    with registry() as reg:
        helm.run(["push", str(archive), reg.oci(), "--plain-http"])
        out = kube.helm(
            "install",
            "lf",
            f"{reg.oci()}/langflow-platform",
            "--version",
            _version(),
            "--plain-http",
            "-n",
            ns,
            "-f",
            str(profile_file("dev")),
            "--wait",
            "--timeout",
            "10m",
        )
    (release,) = yaml.safe_load(kube.helm("list", "-n", ns, "-o", "json"))
    assert release["status"] == "deployed", release
    assert release["chart"] == f"langflow-platform-{_version()}", release
    # NOTES: the URL or port-forward, the superuser password command, the component table
    assert "superuser-password" in out and f"-n {ns}" in out, out
    for component in ("ide", "runtime", "broker", "database", "vectorstore", "monitoring"):
        assert f"  {component}" in out, f"NOTES do not list {component}:\n{out}"
    # the secret the NOTES point at exists and holds a password
    secret_line = next(line for line in out.splitlines() if "superuser-password" in line)
    secret = secret_line.split("get secret", 1)[1].split()[0]
    data = yaml.safe_load(kube.kubectl("get", "secret", secret, "-n", ns, "-o", "yaml").stdout)["data"]
    assert data.get("superuser-password"), f"secret {secret} has no superuser-password"
    kube.helm("uninstall", "lf", "-n", ns, "--wait")


@pytest.mark.timeout(600)
def test_notes_warn_about_dev_choices_in_prod_shape(kube: Cluster, namespace_factory: Callable[[str], str]) -> None:
    ns = namespace_factory("notes")

    def notes(*settings: str) -> str:
        """The output of a server-side dry-run install of the prod profile with these --set values."""
        sets = [arg for s in settings for arg in ("--set", s)]
        return kube.helm("install", "lf", str(UMBRELLA), "-n", ns, "-f", str(profile_file("prod")), "--dry-run=server",
                         *sets)  # fmt: skip

    # standalone without TLS also needs prod's verify-full dropped: that combination is refused (VALUES VALIDATION)
    out = notes("database.mode=standalone", "global.database.sslmode=prefer", "ide.langflow.autoLogin=true")
    assert "WARNING" in out and "database.mode=standalone" in out and "autoLogin=true" in out, out
    # prod with a persistent IDE data volume has no dev-only choice left
    clean = notes("ide.dataVolume.type=pvc")
    assert "WARNING" not in clean, clean
