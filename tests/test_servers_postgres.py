"""servers: the database chart's standalone mode, as rendered, gives Langflow a database it can migrate into.

One render of the dev profile supplies both sides of the connection contract: the database chart's
postgresql.conf, pg_hba.conf, init SQL and 10-langflow.sh (ConfigMap) and its generated Secret, and the IDE
Deployment's LANGFLOW_DATABASE_URL (built by the library's connection helper from the same Secret). Changed for
one machine (tests/harness/data_tier.py): port, socket directory and listen address, and the init script's path to
the init SQL. PostgreSQL is Debian's 15 (the chart's image is 16; nothing rendered is version-specific).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from tests.harness import helm, sandbox
from tests.harness.data_tier import Rendered, RenderedPostgres, postgres_from_chart, rendered_data
from tests.harness.langflow import resolve_env
from tests.harness.servers import PG_BIN, free_port, spawn, wait_for

pytestmark = pytest.mark.servers

RELEASE = "lf"


@pytest.fixture(scope="module")
def rendered():  # type: ignore[no-untyped-def]
    return rendered_data("dev")


@contextlib.contextmanager
def rendered_server(r: Rendered, tls: dict[str, str] | None = None) -> Iterator[RenderedPostgres]:
    """PostgreSQL from one render's ConfigMap, credentials Secret and StatefulSet env (and TLS files)."""
    cm = r.configmaps[f"{RELEASE}-database-config"]
    secret = r.secrets[f"{RELEASE}-database-credentials"]
    sts = r.manifest.get("StatefulSet", f"{RELEASE}-database")
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    with postgres_from_chart(cm, secret, app_db=env["APP_DB"], tls=tls) as server:
        yield server


@pytest.fixture(scope="module")
def pg(rendered):  # type: ignore[no-untyped-def]
    with rendered_server(rendered) as server:
        yield server


def test_statefulset_runs_postgres_with_the_rendered_files(rendered) -> None:  # type: ignore[no-untyped-def]
    sts = rendered.manifest.get("StatefulSet", f"{RELEASE}-database")
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["args"] == [
        "-c",
        "config_file=/etc/postgresql/postgresql.conf",
        "-c",
        "hba_file=/etc/postgresql/pg_hba.conf",
    ]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/etc/postgresql", "/docker-entrypoint-initdb.d", "/var/run/postgresql", "/tmp"} <= mounts
    assert c["securityContext"]["readOnlyRootFilesystem"] is True and c["securityContext"]["runAsUser"] == 999


@pytest.mark.timeout(120)
def test_rendered_config_in_effect_and_app_user_confined(pg: RenderedPostgres) -> None:
    assert pg.psql("show max_connections") == "200"
    assert pg.psql("show password_encryption") == "scram-sha-256"
    assert pg.psql("show hba_file", superuser=True) == str(pg.base / "pg_hba.conf")
    # the application role owns its database and schema but is no superuser and cannot create databases
    row = pg.psql("select rolsuper, rolcreatedb from pg_roles where rolname = current_user")
    assert row == "f|f"
    assert pg.psql("select pg_get_userbyid(datdba) from pg_database where datname = current_database()") == pg.app_user
    with psycopg.connect(pg.url) as conn:
        conn.execute("create table smoke(id int)")
        conn.execute("drop table smoke")
    # scram is enforced: a wrong password is refused
    bad = pg.url.replace(pg.app_password, "wrong-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def _bwrap(uid: int, gid: int, binds: list[tuple[Path, str, bool]], argv: list[str]) -> list[str]:
    """bubblewrap as the pod runs: the pod's uid/gid, a read-only host root, a bind per declared volume."""
    return sandbox.bwrap(uid, gid, binds, argv, die_with_parent=False)


@pytest.mark.timeout(180)
def test_postgres_runs_under_the_pod_contract(rendered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL as the StatefulSet runs it: uid 999, read-only root filesystem, writable only where the pod
    mounts a PVC or emptyDir, the rendered args and mount paths unchanged (only port/listen address added)."""
    sts = rendered.manifest.get("StatefulSet", f"{RELEASE}-database")
    spec = sts["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    uid, gid = c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]
    env = resolve_env(rendered.manifest, sts, c)
    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    binds: list[tuple[Path, str, bool]] = []
    for m in c["volumeMounts"]:
        src = tmp_path / m["name"]
        src.mkdir()
        vol = volumes.get(m["name"], {})
        writable = m["name"] in claims or "emptyDir" in vol
        for kind, objects, ref in (
            ("configMap", rendered.configmaps, "name"),
            ("secret", rendered.secrets, "secretName"),
        ):
            if kind in vol:
                data = objects[vol[kind][ref]]
                for item in vol[kind]["items"]:
                    (src / item["path"]).write_text(data[item["key"]])
                    (src / item["path"]).chmod(vol[kind].get("defaultMode", 0o644))
                    if kind == "secret":  # the kubelet gives the files to the pod's fsGroup
                        os.chown(src / item["path"], 0, spec["securityContext"]["fsGroup"])
        # the host path behind the mount point (/var/run is a symlink to /run here, as in the image); bubblewrap
        # cannot create a missing mount point under a read-only root, so it is created on the host
        dest = os.path.realpath(m["mountPath"])
        Path(dest).mkdir(parents=True, exist_ok=True)
        binds.append((src, dest, writable))
    # the image's /etc/passwd knows uid 999 as postgres (initdb looks its own user up); this host's does not
    passwd = tmp_path / "passwd"
    passwd.write_text(f"postgres:x:{uid}:{gid}::/var/lib/postgresql:/bin/sh\n" + Path("/etc/passwd").read_text())
    binds.append((passwd, "/etc/passwd", False))

    def mounted(path: str) -> Path:
        """The host file behind a path inside the pod."""
        src, dest = next((s, d) for s, d, _ in binds if path.startswith(d.rstrip("/") + "/"))
        return src / os.path.relpath(path, dest)

    # the image's entrypoint reads the superuser password from POSTGRES_PASSWORD_FILE (the mounted Secret)
    superuser_password = mounted(env["POSTGRES_PASSWORD_FILE"]).read_text()
    port = free_port()
    base_env = {"PATH": f"{PG_BIN}:/usr/bin:/bin", "PGDATA": env["PGDATA"], "LANG": "C.UTF-8"}

    initdb = subprocess.run(
        _bwrap(
            uid,
            gid,
            binds,
            [
                str(PG_BIN / "initdb"),
                "-U",
                env["POSTGRES_USER"],
                "--pwfile",
                env["POSTGRES_PASSWORD_FILE"],
                *env["POSTGRES_INITDB_ARGS"].split(),
            ],
        ),
        env=base_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert initdb.returncode == 0, initdb.stderr
    # the container's args as rendered, plus what one machine needs: a free port on loopback
    argv = [str(PG_BIN / "postgres"), *c["args"], "-c", f"port={port}", "-c", "listen_addresses=127.0.0.1"]
    proc = spawn("postgres-pod", _bwrap(uid, gid, binds, argv), tmp_path / "postgres.log", env=base_env)
    su = {
        "PATH": "/usr/bin:/bin",
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "PGUSER": env["POSTGRES_USER"],
        "PGPASSWORD": superuser_password,
        "PGDATABASE": "postgres",
    }

    def psql(sql: str, e: dict[str, str]) -> str:
        out = subprocess.run(["psql", "-At", "-c", sql], env=e, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return out.stdout.strip()

    try:
        wait_for(lambda: proc.ensure_alive() and psql("select 1", su) == "1", 60, "PostgreSQL under the pod contract")
        assert psql("show config_file", su) == "/etc/postgresql/postgresql.conf"
        assert psql("show unix_socket_directories", su) == "/var/run/postgresql"
        # the rendered init script, from its mount path, over the socket in the shared emptyDir
        init_env = {
            **base_env,
            **{k: env[k] for k in ("POSTGRES_USER", "APP_USER_FILE", "APP_PASSWORD_FILE", "APP_DB")},
            "PGPASSWORD": superuser_password,
            "PGPORT": str(port),
        }
        init = subprocess.run(
            _bwrap(uid, gid, binds, ["sh", "/docker-entrypoint-initdb.d/10-langflow.sh"]),
            env=init_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert init.returncode == 0, init.stderr
        app_user, app_password = (mounted(env[k]).read_text() for k in ("APP_USER_FILE", "APP_PASSWORD_FILE"))
        app = {**su, "PGUSER": app_user, "PGPASSWORD": app_password, "PGDATABASE": env["APP_DB"]}
        assert psql("select current_user || '@' || current_database()", app) == f"{app_user}@{env['APP_DB']}"
        # no credential in the container's environment: only paths of the mounted Secret
        assert not [e for e in c["env"] if "secretKeyRef" in (e.get("valueFrom") or {})], c["env"]
        # nothing was written outside the declared volumes: the data directory is on the PVC's source
        data_src = next(src for src, dest, _ in binds if dest == os.path.realpath("/var/lib/postgresql/data"))
        assert (data_src / "pgdata" / "PG_VERSION").exists()
    finally:
        proc.stop(sig=signal.SIGINT)


@pytest.mark.timeout(120)
def test_only_the_application_role_logs_in_over_the_network(pg: RenderedPostgres) -> None:
    """The rendered pg_hba.conf: over the network the application role reaches its database and nothing else; the
    superuser is refused there, though it still logs in inside the pod (the socket)."""
    net = {"host": pg.host, "port": pg.port, "connect_timeout": 5}
    with psycopg.connect(user=pg.app_user, password=pg.app_password, dbname=pg.app_db, **net) as conn:
        assert conn.execute("select current_user").fetchone() == (pg.app_user,)
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(user="postgres", password=pg.superuser_password, dbname=pg.app_db, **net)
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(user=pg.app_user, password=pg.app_password, dbname="postgres", **net)
    assert pg.psql("select current_user", superuser=True) == "postgres"  # the socket, inside the pod


def _certificates(tmp: Path, dns_names: Sequence[str] = ("lf-database.langflow.svc",)) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1 and these DNS names, as a cert-manager Certificate's Secret."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=tmp)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=e2e-ca", "-keyout", "ca.key",
        "-out", "ca.crt")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=lf-database", "-keyout", "tls.key", "-out", "tls.csr")
    sans = ",".join(["IP:127.0.0.1", *(f"DNS:{n}" for n in dns_names)])
    (tmp / "san.ext").write_text(f"subjectAltName={sans}\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1",
        "-extfile", "san.ext", "-out", "tls.crt")  # fmt: skip
    return {name: (tmp / name).read_text() for name in ("tls.crt", "tls.key", "ca.crt")}


def _tls_server_values(tmp: Path, files: dict[str, str]) -> Path:
    """Values that turn the standalone server's TLS on with these files (a Secret of the release's)."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "lf-database-tls"},
              "type": "kubernetes.io/tls", "stringData": files}  # fmt: skip
    values = tmp / "tls.yaml"
    values.write_text(yaml.safe_dump({
        "database": {"standalone": {"tls": {"enabled": True, "existingSecret": "lf-database-tls"}}},
        "extraObjects": [secret],
    }))  # fmt: skip
    return values


@pytest.mark.timeout(180)
def test_with_tls_the_network_takes_only_verified_tls(tmp_path: Path) -> None:
    """database.standalone.tls: the rendered server serves TLS from the mounted Secret and its pg_hba refuses a
    plaintext login over the network (hostssl), while a client verifying the server (verify-full, the CA) gets in
    over TLS."""
    r = rendered_data("dev", values=[_tls_server_values(tmp_path, _certificates(tmp_path))])
    spec = r.manifest.get("StatefulSet", f"{RELEASE}-database")["spec"]["template"]["spec"]
    (tls_volume,) = [v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "lf-database-tls"]
    tls = {i["path"]: r.secrets["lf-database-tls"][i["key"]] for i in tls_volume["secret"]["items"]}
    with rendered_server(r, tls) as pg:
        net = {"host": pg.host, "port": pg.port, "connect_timeout": 5, "user": pg.app_user, "dbname": pg.app_db}
        with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry.*no encryption"):
            psycopg.connect(password=pg.app_password, sslmode="disable", **net)
        ca = tmp_path / "ca.crt"
        with psycopg.connect(password=pg.app_password, sslmode="verify-full", sslrootcert=str(ca), **net) as conn:
            row = conn.execute("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        assert row is not None and row[0] is True and row[1] in ("TLSv1.2", "TLSv1.3"), row
        # a client that verifies against another CA is refused before it logs in
        other = tmp_path / "other"
        other.mkdir()
        (other / "ca.pem").write_text(_certificates(other)["ca.crt"])
        with pytest.raises(psycopg.OperationalError, match=r"certificate verify failed"):
            psycopg.connect(password=pg.app_password, sslmode="verify-full", sslrootcert=str(other / "ca.pem"), **net)


def cloudnativepg_server_names(cluster: dict[str, Any], namespace: str) -> list[str]:
    """The DNS names CloudNativePG puts in the server certificate it issues (v1.27, Cluster.GetClusterAltDNSNames):
    the cluster's -rw, -r and -ro Services, each in four forms, then spec.certificates.serverAltDNSNames. Its Pooler
    presents the same certificate to the clients (PgBouncer's client_tls_cert_file is the cluster's server TLS
    Secret: internal/pgbouncer/management/controller/secrets.go)."""
    names = []
    for kind in ("rw", "r", "ro"):
        svc = f"{cluster['metadata']['name']}-{kind}"
        names += [svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local"]
    return names + list((cluster["spec"].get("certificates") or {}).get("serverAltDNSNames") or [])


@pytest.mark.timeout(240)
def test_prod_client_verifies_the_server_with_the_mounted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prod's IDE, as rendered (its database URL unchanged, libpq's PGSSLROOTCERT naming the mounted CA), against a
    real PostgreSQL serving the certificate CloudNativePG would issue for the rendered Cluster: verify-full gets in
    over TLS, dialling the rendered host name; a CA file of another CA is refused, and so is the certificate
    CloudNativePG issues without the Cluster's serverAltDNSNames (it does not name the Pooler the clients dial)."""
    prod = helm.render_profile("prod")
    (cluster,) = prod.of_kind("Cluster")
    ide = prod.get("Deployment", f"{RELEASE}-ide")["spec"]["template"]["spec"]
    (c,) = [x for x in ide["containers"] if x["name"] == "langflow"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    url = env["LANGFLOW_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://", 1)
    host = env["LF_DATABASE_HOST"]
    assert "sslmode=verify-full" in url and host in url
    # the CA file where the pod sees it: the Secret volume mounted over PGSSLROOTCERT's directory
    rootcert = env["PGSSLROOTCERT"]
    (mount,) = [m for m in c["volumeMounts"] if rootcert.startswith(m["mountPath"].rstrip("/") + "/")]
    ca_file = tmp_path / "mounted" / os.path.relpath(rootcert, mount["mountPath"])
    ca_file.parent.mkdir(parents=True)
    monkeypatch.setenv("PGSSLROOTCERT", str(ca_file))

    def serve(names: Sequence[str], where: Path) -> contextlib.AbstractContextManager[RenderedPostgres]:
        where.mkdir()
        files = _certificates(where, names)
        r = rendered_data("dev", values=[_tls_server_values(where, files)])
        return rendered_server(r, {k: files[k] for k in ("tls.crt", "tls.key", "ca.crt")})

    def connect(pg: RenderedPostgres) -> psycopg.Connection[Any]:
        # the rendered URL (host name, sslmode) with this machine's address under it (libpq hostaddr: the name
        # is still what verify-full checks) and the server's port and password
        return psycopg.connect(url, hostaddr="127.0.0.1", port=pg.port, user=pg.app_user, password=pg.app_password,
                               dbname=pg.app_db, connect_timeout=5)  # fmt: skip

    with serve(cloudnativepg_server_names(cluster, "langflow"), tmp_path / "cnpg") as pg:
        ca_file.write_text((tmp_path / "cnpg" / "ca.crt").read_text())
        with connect(pg) as conn:
            row = conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        assert row == (True,), row
        other = tmp_path / "other"
        other.mkdir()
        ca_file.write_text(_certificates(other)["ca.crt"])
        with pytest.raises(psycopg.OperationalError, match=r"certificate verify failed"):
            connect(pg)
    # without the Pooler's names the certificate names only the cluster's own Services
    bare = {**cluster, "spec": {k: v for k, v in cluster["spec"].items() if k != "certificates"}}
    with serve(cloudnativepg_server_names(bare, "langflow"), tmp_path / "bare") as pg:
        ca_file.write_text((tmp_path / "bare" / "ca.crt").read_text())
        with pytest.raises(psycopg.OperationalError, match=rf"does not match host name \"{host}\""):
            connect(pg)
