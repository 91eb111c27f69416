"""servers: the database chart's standalone mode, as rendered, gives Langflow a database it can migrate into.

One render of the dev profile supplies both sides of the connection contract: the database chart's
postgresql.conf, pg_hba.conf, init SQL and 10-langflow.sh (ConfigMap) and its generated Secret, and the IDE
Deployment's LANGFLOW_DATABASE_URL (built by the library's connection helper from the same Secret). Changed for
one machine (tests/harness/data_tier.py): port, socket directory and listen address, and the init script's path to
the init SQL. PostgreSQL is Debian's 15 (the chart's image is 16; nothing rendered is version-specific).
"""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from tests.harness.data_tier import RenderedPostgres, postgres_rendered, rendered_data
from tests.harness.langflow import LANGFLOW_VENV, find_container, find_workload, map_hosts, resolve_env

pytestmark = pytest.mark.servers

RELEASE = "lf"


@pytest.fixture(scope="module")
def rendered():  # type: ignore[no-untyped-def]
    return rendered_data("dev")


@pytest.fixture(scope="module")
def pg(rendered):  # type: ignore[no-untyped-def]
    cm = rendered.configmaps[f"{RELEASE}-database-config"]
    secret = rendered.secrets[f"{RELEASE}-database-credentials"]
    sts = rendered.manifest.get("StatefulSet", f"{RELEASE}-database")
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
    with postgres_rendered(
        postgresql_conf=cm["postgresql.conf"],
        pg_hba=cm["pg_hba.conf"],
        init_psql=cm["langflow-init.psql"],
        init_sh=cm["10-langflow.sh"],
        app_user=secret["username"],
        app_password=secret["password"],
        app_db=env["APP_DB"],
        superuser_password=secret["superuser-password"],
    ) as server:
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


@pytest.mark.timeout(420)
def test_langflow_migrates_with_the_ide_database_url(pg: RenderedPostgres, rendered) -> None:  # type: ignore[no-untyped-def]
    ide = find_workload(rendered.manifest, "ide")
    env = resolve_env(rendered.manifest, ide, find_container(ide))
    env = map_hosts(env, {f"{RELEASE}-database": pg.port}, "langflow")
    url = env["LANGFLOW_DATABASE_URL"]
    assert f"127.0.0.1:{pg.port}/{pg.app_db}" in url, url
    langflow = LANGFLOW_VENV / "bin" / "langflow"
    assert langflow.exists(), "Langflow is not installed: run `tools/install.sh langflow` (make tools does)"
    driver = subprocess.run([str(LANGFLOW_VENV / "bin" / "python"), "-c", "import psycopg"], capture_output=True)
    assert driver.returncode == 0, (
        "Langflow's venv has no PostgreSQL driver: install `langflow[postgresql]` (the official image ships it)"
    )
    home = pg.base / "langflow-home"
    home.mkdir()
    # the IDE container's whole environment (superuser, secret key, ...), as resolved from the same render;
    # only PATH and the writable home/config directory are the harness's
    run_env = {
        **env,
        "PATH": f"{LANGFLOW_VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "LANGFLOW_CONFIG_DIR": str(home),
        "DO_NOT_TRACK": "true",
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(langflow), "migration", "--no-test"],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=360,
        cwd=str(home),
    )
    took = time.monotonic() - t0
    assert proc.returncode == 0, f"langflow migration failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    version = pg.psql("select version_num from alembic_version")
    tables = pg.psql(
        "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname = 'public'"
    ).split(",")
    owners = set(pg.psql("select distinct tableowner from pg_tables where schemaname = 'public'").split("\n"))
    print(
        f"\nlangflow migration --no-test: {took:.1f}s, alembic head {version}, {len(tables)} tables owned by {owners}"
    )
    assert version, "no alembic revision recorded"
    assert {"flow", "user", "apikey"} <= set(tables), tables
    assert owners == {pg.app_user}
