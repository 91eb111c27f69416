"""backup: the database chart's backup CronJob and restore Job, run as rendered, survive losing the database.

One render of the dev profile (standalone PostgreSQL, backup + restore switched on, S3 endpoint in-cluster) gives:
the server's config, the credentials Secret, the IDE's env, and the CronJob's/Job's containers (scripts from the
rendered ConfigMap, env from the rendered spec). The harness runs:
  PostgreSQL 15 (rendered config) <- Langflow (IDE env; migrates, loads starter flows, flows created via its API)
  + a ballast table for a stated size -> CronJob step 1 (pg_dump) + step 2 (S3 upload, retention, status, metrics)
  -> a NEW PostgreSQL from the same rendered config (the disaster: the old cluster is gone)
  -> restore Job step 1 (download "latest") + step 2 (pg_restore) -> row counts and flow contents compared.
S3 is moto in server mode on loopback (the in-cluster endpoint is mapped to it); a Pushgateway stand-in records
what the job pushes. Only paths (/scripts, /backup) and hosts/ports differ from the pods.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.harness import helm, servers
from tests.harness.data_tier import RenderedPostgres, postgres_from_chart, rendered_data
from tests.harness.langflow import langflow_process, map_hosts, resolve_env
from tests.harness.paths import REPORTS, ROOT
from tests.harness.servers import PG_BIN, free_port

pytestmark = pytest.mark.backup

R = "lf"
NS = "langflow"
BUCKET = "langflow-backups"
PREFIX = "langflow/database"
S3_SERVICE = "s3"  # the in-cluster S3 endpoint the values name: http://s3.langflow.svc.cluster.local:9000
BALLAST_ROWS = 200_000
CREATED_FLOWS = 20
VALUES = {
    "database.backup.enabled": True,
    "database.backup.s3.bucket": BUCKET,
    "database.backup.s3.prefix": PREFIX,
    "database.backup.s3.endpoint": f"http://{S3_SERVICE}.{NS}.svc.cluster.local:9000",
    "database.backup.s3.credentialsSecret": "backup-s3",
    "database.backup.retentionDays": 7,
    "database.backup.pushgatewayURL": f"http://pushgateway.{NS}.svc.cluster.local:9091",
    "database.restore.enabled": True,
    "database.restore.id": "round-trip",
}
S3_SECRET = {  # what the operator creates (the chart references it by name)
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "backup-s3", "namespace": NS},
    "stringData": {"ACCESS_KEY_ID": "testing", "ACCESS_SECRET_KEY": "testing"},
}


# ------------------------------------------------------------------------------------------------ servers
class _Capture(http.server.BaseHTTPRequestHandler):
    pushes: list[tuple[str, str]] = []  # noqa: RUF012 - one capture list per server class (made per test)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.pushes.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def pushgateway() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    handler = type("Capture", (_Capture,), {"pushes": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[1], handler.pushes
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------------ helpers
def pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    tmpl = obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else obj["spec"]["template"]
    return {"metadata": obj["metadata"], "spec": {"template": tmpl}}


def secret_files(obj: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return {**data, **(obj.get("stringData") or {})}


def mount_volumes(
    manifest: helm.Manifest, obj: dict[str, Any], container: dict[str, Any], root: Path
) -> dict[str, str]:
    """The container's Secret volumes as the kubelet mounts them (the items' files, with the volume's mode) and its
    /tmp emptyDir, each under `root`: {mountPath: host directory}. (/scripts and /backup: see run_step.)"""
    volumes = {v["name"]: v for v in pod_of(obj)["spec"]["template"]["spec"].get("volumes") or []}
    out: dict[str, str] = {}
    for m in container.get("volumeMounts") or []:
        vol = volumes[m["name"]]
        if "secret" not in vol and m["mountPath"] != "/tmp":
            continue
        where = root / m["name"]
        where.mkdir(parents=True, exist_ok=True)
        if "secret" in vol:
            found = manifest.secret(vol["secret"]["secretName"])
            assert found is not None, f"{m['name']}: Secret {vol['secret']['secretName']} is not in the manifest"
            data = secret_files(found)
            for item in vol["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                (where / item["path"]).write_text(data[item["key"]])
                (where / item["path"]).chmod(vol["secret"].get("defaultMode", 0o644))
        out[m["mountPath"]] = str(where)
    return out


def run_step(
    manifest: helm.Manifest,
    obj: dict[str, Any],
    container: dict[str, Any],
    *,
    scripts: Path,
    work: Path,
    endpoints: dict[str, Any],
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run one container of the CronJob/Job as rendered: its command (the script from the rendered ConfigMap),
    its env resolved from the render with in-cluster hosts mapped to loopback; /scripts and /backup become dirs, and
    its Secret volumes and /tmp are files under the work dir (env values naming them point there)."""
    env = resolve_env(manifest, pod_of(obj), container)
    mounts = mount_volumes(manifest, obj, container, work / f"mounts-{container['name']}")
    for key, value in env.items():  # before the hosts: a path such as /run/secrets/s3 is no Service "s3"
        for path, host in mounts.items():
            if value == path or value.startswith(path.rstrip("/") + "/"):
                env[key] = host + value[len(path) :]
    env = map_hosts(env, endpoints, NS)
    env.update(
        {
            "BACKUP_DIR": str(work),
            "HOME": str(work.parent),
            "PATH": f"{ROOT / '.venv/bin'}:{PG_BIN}:/usr/bin:/bin",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    argv = [a.replace("/scripts/", f"{scripts}/") for a in container["command"]]
    t0 = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    return proc, time.monotonic() - t0


def backup_scripts(render: Any, tmp_path: Path) -> Path:
    """The rendered backup-scripts ConfigMap as files (what the pods mount at /scripts)."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name, text in render.configmaps[f"{R}-database-backup-scripts"].items():
        (scripts / name).write_text(text)
    return scripts


def table_counts(pg: RenderedPostgres) -> dict[str, int]:
    tables = pg.psql("select tablename from pg_tables where schemaname = 'public' order by 1").split()
    return {t: int(pg.psql(f'select count(*) from "{t}"')) for t in tables}


def flows_digest(pg: RenderedPostgres) -> list[str]:
    return pg.psql(
        "select id || ':' || name || ':' || md5(coalesce(data::text, '')) from flow order by id"
    ).splitlines()


# --------------------------------------------------------------------------------------------------- test
@pytest.mark.timeout(600)
def test_backup_restore_round_trip(tmp_path: Path) -> None:
    render = rendered_data("dev", set_values=VALUES)
    manifest = helm.Manifest([*render.manifest.objects, S3_SECRET], source=render.manifest.source)
    cm = render.configmaps[f"{R}-database-config"]
    secret = render.secrets[f"{R}-database-credentials"]
    scripts = backup_scripts(render, tmp_path)
    cron = manifest.get("CronJob", f"{R}-database-backup")
    job = manifest.get("Job", f"{R}-database-restore")
    cpod, jpod = pod_of(cron)["spec"]["template"]["spec"], pod_of(job)["spec"]["template"]["spec"]
    dump_c, upload_c = cpod["initContainers"][0], cpod["containers"][0]
    download_c, restore_c = jpod["initContainers"][0], jpod["containers"][0]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid" and "pg_dump" in (scripts / "backup-dump.sh").read_text()

    with servers.moto(tmp_path) as s3_port, pushgateway() as (pgw_port, pushes):
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{s3_port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        now = datetime.now(UTC)
        old = f"{PREFIX}/langflow-{(now - timedelta(days=30)):%Y%m%dT%H%M%SZ}.dump"
        recent = f"{PREFIX}/langflow-{(now - timedelta(days=2)):%Y%m%dT%H%M%SZ}.dump"
        for key in (old, recent):
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"an older dump")
        s3_endpoints = {S3_SERVICE: {9000: s3_port}, "pushgateway": {9091: pgw_port}}

        # ---- the live system: Langflow migrates, loads its starter flows, and we create some through the API
        with postgres_from_chart(cm, secret) as pg:
            with langflow_process(manifest, "ide", endpoints={f"{R}-database": pg.port}) as lf:
                for i in range(CREATED_FLOWS):
                    r = requests.post(
                        f"{lf.base_url}/api/v1/flows/",
                        headers=lf.headers(),
                        timeout=30,
                        json={
                            "name": f"backup-test-{i}",
                            "description": "round trip",
                            "data": {"nodes": [], "edges": [], "n": i},
                        },
                    )
                    assert r.status_code == 201, r.text
                api_flows = len(lf.flows())
            pg.psql(
                "create table backup_ballast as select g as id, md5(g::text) || repeat('x', 200) as payload "
                f"from generate_series(1, {BALLAST_ROWS}) g"
            )
            db_bytes = int(pg.psql("select pg_database_size(current_database())"))
            before_counts = table_counts(pg)
            before_flows = flows_digest(pg)
            assert before_counts["flow"] >= CREATED_FLOWS and api_flows >= CREATED_FLOWS

            # ---- the CronJob, step by step, as rendered
            db = {f"{R}-database": pg.port, **s3_endpoints}
            work = tmp_path / "backup"
            work.mkdir()
            dump, dump_s = run_step(manifest, cron, dump_c, scripts=scripts, work=work, endpoints=db)
            assert dump.returncode == 0 and (work / "ok").exists(), dump.stderr
            upload, upload_s = run_step(manifest, cron, upload_c, scripts=scripts, work=work, endpoints=db)
            assert upload.returncode == 0, f"{upload.stdout}\n{upload.stderr}"

            # ---- a failing run: the server is unreachable -> non-zero exit, failure status and metric
            fail_work = tmp_path / "backup-fail"
            fail_work.mkdir()
            down = {f"{R}-database": free_port(), **s3_endpoints}
            fd, _ = run_step(manifest, cron, dump_c, scripts=scripts, work=fail_work, endpoints=down)
            fu, _ = run_step(manifest, cron, upload_c, scripts=scripts, work=fail_work, endpoints=down)
            assert fd.returncode == 0 and not (fail_work / "ok").exists()
            assert fu.returncode != 0, "a failed pg_dump must fail the Job"

        # the old cluster is gone (its data directory was removed with it)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")["Contents"])
        dumps = [k for k in keys if k.endswith(".dump")]
        name = (work / "name").read_text().strip()
        assert f"{PREFIX}/{name}" in dumps and recent in dumps, keys
        assert old not in dumps, "the 30-day-old dump must be pruned (retention 7 days)"
        dump_bytes = s3.head_object(Bucket=BUCKET, Key=f"{PREFIX}/{name}")["ContentLength"]
        assert dump_bytes == (work / name).stat().st_size
        success = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/_status/last-success.json")["Body"].read())
        failure = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/_status/last-failure.json")["Body"].read())
        assert success["status"] == "success" and success["size_bytes"] == dump_bytes and success["object"] == name
        assert failure["status"] == "failure" and "pg_dump failed" in failure["message"]
        assert abs(success["timestamp"] - time.time()) < 600
        pushed = dict(pushes)
        path = "/metrics/job/langflow_database_backup/database/langflow"
        assert path in pushed and len(pushes) == 2
        bodies = [b for p, b in pushes if p == path]
        assert "langflow_database_backup_last_run_success 1" in bodies[0]
        assert "langflow_database_backup_last_run_success 0" in bodies[1]
        for body in bodies:
            check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
            assert "error" not in (check.stdout + check.stderr).lower(), check.stderr

        # ---- disaster recovery: a NEW server from the rendered config, the restore Job as rendered
        with postgres_from_chart(cm, secret) as fresh:
            assert "flow" not in fresh.psql(
                "select string_agg(tablename, ',') from pg_tables where schemaname='public'"
            )
            rwork = tmp_path / "restore"
            rwork.mkdir()
            rdb = {f"{R}-database": fresh.port, **s3_endpoints}
            dl, dl_s = run_step(manifest, job, download_c, scripts=scripts, work=rwork, endpoints=rdb)
            assert dl.returncode == 0 and name in dl.stdout, dl.stderr  # "latest" picked the newest dump
            rs, restore_s = run_step(manifest, job, restore_c, scripts=scripts, work=rwork, endpoints=rdb)
            assert rs.returncode == 0, rs.stderr
            after_counts = table_counts(fresh)
            after_flows = flows_digest(fresh)
            owners = set(fresh.psql("select distinct tableowner from pg_tables where schemaname='public'").split())

    # the restore records its id (database.restore.id) next to the data, in its own table
    assert after_counts.pop("langflow_platform_restores") == 1
    assert after_counts == before_counts
    assert after_flows == before_flows
    assert owners == {secret["username"]}
    mb = db_bytes / 1e6
    result = {
        "database_bytes": db_bytes,
        "dump_bytes": dump_bytes,
        "tables": len(before_counts),
        "rows": sum(before_counts.values()),
        "flows": before_counts["flow"],
        "dump_s": round(dump_s, 2),
        "upload_s": round(upload_s, 2),
        "download_s": round(dl_s, 2),
        "restore_s": round(restore_s, 2),
        "restore_mb_per_s": round(mb / max(dl_s + restore_s, 0.01), 1),
    }
    # RTO extrapolation: restore time scales with the database size at the measured rate
    result["extrapolated_restore_10gb_min"] = round(10_000 / result["restore_mb_per_s"] / 60, 1)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "backup.json").write_text(json.dumps(result, indent=2))
    print(f"\nbackup round trip: {json.dumps(result)}")


@pytest.mark.timeout(300)
def test_restore_runs_once_per_id(tmp_path: Path) -> None:
    """database.restore left on: the upgrade after a restore changes nothing; a new id refuses a database that
    holds data unless database.restore.force; with force it restores. Real PostgreSQL, the Job's steps as rendered
    at install and at upgrade (helm template --is-upgrade)."""
    values = {**VALUES, "database.restore.id": "first"}
    render = rendered_data("dev", set_values=values)
    base = [*render.manifest.objects, S3_SECRET]
    cm = render.configmaps[f"{R}-database-config"]
    secret = render.secrets[f"{R}-database-credentials"]
    scripts = backup_scripts(render, tmp_path)
    cron = render.manifest.get("CronJob", f"{R}-database-backup")
    cpod = pod_of(cron)["spec"]["template"]["spec"]
    manifest = helm.Manifest(base, source=render.manifest.source)

    def restore(work: Path, endpoints: dict[str, Any], *, upgrade: bool, **more: Any) -> tuple[str, str, int]:
        """The restore Job of a render with these values (the credentials stay the first render's)."""
        m = helm.render_profile("dev", set_values={**values, **more}, extra=["--is-upgrade"] if upgrade else [])
        job = m.get("Job", f"{R}-database-restore")
        jm = helm.Manifest([o for o in base if o["kind"] != "Job"] + [job], source=m.source)
        jpod = pod_of(job)["spec"]["template"]["spec"]
        out, err = "", ""
        for c in (jpod["initContainers"][0], jpod["containers"][0]):
            proc, _ = run_step(jm, job, c, scripts=scripts, work=work, endpoints=endpoints)
            out, err = out + proc.stdout, err + proc.stderr
            if proc.returncode:
                return out, err, proc.returncode
        return out, err, 0

    def notes(pg: RenderedPostgres) -> list[str]:
        return pg.psql("select body from notes order by id").splitlines()

    with servers.moto(tmp_path) as s3_port:
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        s3_endpoints = {S3_SERVICE: {9000: s3_port}, "pushgateway": {9091: free_port()}}
        with postgres_from_chart(cm, secret) as live:
            live.psql("create table notes (id serial primary key, body text)")
            live.psql("insert into notes (body) values ('a'), ('b'), ('c')")
            work = tmp_path / "backup"
            work.mkdir()
            for c in (cpod["initContainers"][0], cpod["containers"][0]):
                proc, _ = run_step(manifest, cron, c, scripts=scripts, work=work,
                                   endpoints={f"{R}-database": live.port, **s3_endpoints})  # fmt: skip
                assert proc.returncode == 0, proc.stderr

        with postgres_from_chart(cm, secret) as fresh:
            db = {f"{R}-database": fresh.port, **s3_endpoints}
            works = iter(tmp_path / f"restore-{i}" for i in range(5))

            def step(**kw: Any) -> tuple[str, str, int]:
                w = next(works)
                w.mkdir()
                return restore(w, db, **kw)

            out, err, rc = step(upgrade=False)  # the install that restores
            assert rc == 0 and "restore first: restored" in out, err
            assert notes(fresh) == ["a", "b", "c"]
            fresh.psql("insert into notes (body) values ('written after the restore')")

            out, err, rc = step(upgrade=True)  # the next upgrade, restore still switched on
            assert rc == 0 and "nothing to do" in out, (out, err)
            assert notes(fresh) == ["a", "b", "c", "written after the restore"], "the upgrade restored again"

            out, err, rc = step(upgrade=True, **{"database.restore.id": "second"})
            assert rc != 0 and "database.restore.force" in err and "notes" in err, (out, err)
            assert notes(fresh)[-1] == "written after the restore", "a refused restore changed the data"

            out, err, rc = step(upgrade=True, **{"database.restore.id": "second", "database.restore.force": True})
            assert rc == 0 and "restore second: restored" in out, err
            assert notes(fresh) == ["a", "b", "c"]
            ids = fresh.psql("select id from langflow_platform_restores order by id").split()
            assert ids == ["first", "second"], ids


@pytest.mark.timeout(300)
def test_backup_steps_read_credentials_from_files(tmp_path: Path) -> None:
    """The dump and upload steps as rendered hold no credential in their environment: pg_dump logs in with the
    PGPASSFILE the step writes (mode 0600, pgpass format) from the mounted Secret, a password holding ":", "\\",
    "@", "/" and "%" included, and aws-cli signs with the AWS_SHARED_CREDENTIALS_FILE the step writes from the
    mounted S3 Secret; without that Secret (pod identity) aws-cli here finds no credentials at all."""
    render = rendered_data("dev", set_values=VALUES)
    cm = render.configmaps[f"{R}-database-config"]
    secret = render.secrets[f"{R}-database-credentials"]
    password = "p:a\\ss@w/o%rd:"
    creds = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{R}-database-credentials", "namespace": NS},
             "stringData": {**secret, "password": password}}  # fmt: skip
    kept = [
        o
        for o in render.manifest.objects
        if (o["kind"], o["metadata"]["name"]) != ("Secret", creds["metadata"]["name"])
    ]
    manifest = helm.Manifest([*kept, creds, S3_SECRET], source=render.manifest.source)
    scripts = backup_scripts(render, tmp_path)
    cron = manifest.get("CronJob", f"{R}-database-backup")
    cpod = pod_of(cron)["spec"]["template"]["spec"]
    dump_c, upload_c = cpod["initContainers"][0], cpod["containers"][0]
    for c in (dump_c, upload_c):
        env = resolve_env(manifest, pod_of(cron), c)
        assert not {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), c["name"]
        assert password not in env.values() and S3_SECRET["stringData"]["ACCESS_SECRET_KEY"] not in env.values()

    with servers.moto(tmp_path) as s3_port, postgres_from_chart(cm, secret) as pg:
        pg.psql(f"alter role {secret['username']} password '{password}'", superuser=True)
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        endpoints = {f"{R}-database": pg.port, S3_SERVICE: {9000: s3_port}, "pushgateway": {9091: free_port()}}
        work = tmp_path / "backup"
        work.mkdir()
        dump, _ = run_step(manifest, cron, dump_c, scripts=scripts, work=work, endpoints=endpoints)
        assert dump.returncode == 0 and (work / "ok").exists(), dump.stderr + (work / "error").read_text()
        assert "group or world access" not in (work / "error").read_text()
        pgpass_in_pod = Path(next(e["value"] for e in dump_c["env"] if e["name"] == "PGPASSFILE"))
        pgpass = work / f"mounts-{dump_c['name']}" / "tmp" / pgpass_in_pod.relative_to("/tmp")
        assert pgpass.stat().st_mode & 0o777 == 0o600
        upload, _ = run_step(manifest, cron, upload_c, scripts=scripts, work=work, endpoints=endpoints)
        assert upload.returncode == 0, f"{upload.stdout}\n{upload.stderr}"
        name = (work / "name").read_text().strip()
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert f"{PREFIX}/{name}" in keys, keys

        # pod identity (no credentials Secret): nothing to write, and no credentials reach aws-cli from anywhere else
        iam = rendered_data("dev", set_values={**VALUES, "database.backup.s3.credentialsSecret": ""})
        icron = iam.manifest.get("CronJob", f"{R}-database-backup")
        iwork = tmp_path / "iam"
        iwork.mkdir()
        (iwork / "ok").touch()
        (iwork / "name").write_text(name)
        (iwork / name).write_bytes((work / name).read_bytes())
        iupload = pod_of(icron)["spec"]["template"]["spec"]["containers"][0]
        refused, _ = run_step(iam.manifest, icron, iupload, scripts=scripts, work=iwork, endpoints=endpoints)
        assert refused.returncode != 0 and "Unable to locate credentials" in refused.stderr, refused.stderr
