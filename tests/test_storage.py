"""storage: files uploaded through one IDE replica are read through another (global.storage s3).

Two real Langflow 1.13 processes started from the rendered IDE container (the harness's pod contract: the pod's
env, mounts and uid under bubblewrap) share one PostgreSQL, as IDE replicas do, and keep files in S3 (moto in
server mode standing for the bucket, reached at the endpoint the values name; the credentials file comes from the
Secret the values name, mounted as the pod would). A file uploaded to the first is downloaded from the second,
byte for byte, and the object is in the bucket under the prefix the values set.
"""

from __future__ import annotations

import secrets
import urllib.parse
from typing import Any

import boto3
import pytest
import requests

from tests.harness import helm, servers
from tests.harness.langflow import find_container, find_workload, langflow_process, resolve_env

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

NS = "langflow"
S3_SERVICE = "objects"  # the in-cluster S3-compatible endpoint the values name
BUCKET, PREFIX = "langflow-files", "uploads"
KEY_ID, SECRET_KEY = "storage-test", secrets.token_hex(12)
CREDENTIALS = {  # the user's Secret holding an AWS shared credentials file (released here through extraObjects)
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "files-s3"},
    "stringData": {"credentials": f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET_KEY}\n"},
}
VALUES = {
    "global.storage": {
        "type": "s3",
        "s3": {
            "bucket": BUCKET,
            "prefix": PREFIX,
            "region": "us-east-1",
            "existingSecret": "files-s3",
            "endpoint": f"http://{S3_SERVICE}.{NS}.svc.cluster.local:9000",
        },
    },
    "ide.replicaCount": 2,
    "extraObjects": [CREDENTIALS],
}


def upload(base_url: str, headers: dict[str, str], name: str, body: bytes) -> dict[str, Any]:
    r = requests.post(f"{base_url}/api/v2/files/", files={"file": (name, body)}, headers=headers, timeout=60)
    assert r.status_code in (200, 201), r.text[:500]
    return dict(r.json())


def test_a_file_uploaded_through_one_ide_replica_is_read_through_another(tmp_path: Any) -> None:
    m = helm.render_profile("dev", set_values=VALUES, namespace=NS)
    ide = find_workload(m, "ide")
    env = resolve_env(m, ide, find_container(ide, "langflow"))
    assert env["LANGFLOW_STORAGE_TYPE"] == "s3" and "AWS_SECRET_ACCESS_KEY" not in env
    db = urllib.parse.urlsplit(env["LANGFLOW_DATABASE_URL"])
    with (
        servers.moto(tmp_path) as s3_port,
        servers.postgres(user=db.username or "", password_=env["PGPASSWORD"], dbname=db.path.lstrip("/")) as pg,
    ):
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3_port}", region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET_KEY)  # fmt: skip
        s3.create_bucket(Bucket=BUCKET)
        endpoints: dict[str, Any] = {"lf-database": {5432: pg.port}, S3_SERVICE: {9000: s3_port}}
        body = f"shared between replicas {secrets.token_hex(8)}\n".encode() * 50
        # one after the other, as a rollout starts them: the first migrates the database, the second finds it done
        with langflow_process(m, "ide", endpoints=endpoints, startup_timeout=300) as first:
            uploaded = upload(first.base_url, first.headers(), "notes.txt", body)
            with langflow_process(m, "ide", endpoints=endpoints, startup_timeout=300) as second:
                assert second.base_url != first.base_url
                got = requests.get(f"{second.base_url}/api/v2/files/{uploaded['id']}", headers=second.headers(),
                                   timeout=60)  # fmt: skip
                assert got.status_code == 200, got.text[:500]
                assert got.content == body, "the second replica read other bytes than the first one stored"
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert any(k.startswith(f"{PREFIX}/") for k in keys), keys
        stored = next(k for k in keys if k.startswith(f"{PREFIX}/"))
        assert s3.get_object(Bucket=BUCKET, Key=stored)["Body"].read() == body
