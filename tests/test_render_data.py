"""render: the data tier (database, broker, vector store) renders exactly its mode's objects and the connection
contract (Service and Secret names, ports, keys) in every mode; CloudNativePG objects validate against the CRDs."""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

import jsonschema
import pytest
import yaml

from tests.harness import helm
from tests.harness.paths import TOOLS

pytestmark = pytest.mark.render

R = "lf"
NS = "langflow"


def render(profile: str = "prod", **values: Any) -> helm.Manifest:
    """The render, with the Secrets the secret generator Job makes from its specs (as the cluster holds them)."""
    return helm.render_profile(profile, set_values=values).with_generated_secrets()


def component(m: helm.Manifest, name: str) -> list[dict[str, Any]]:
    return [o for o in m.objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == name]


def secret_data(obj: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}


def kinds(objs: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objs}


def assert_kept_secret(s: dict[str, Any]) -> None:
    """Outlives uninstall: made by the secret generator Job (in no release), or rendered with resource-policy keep."""
    made = s["metadata"].get("labels", {}).get("langflow-platform.dev/generated-by") == "secret-generator"
    assert made or (s["metadata"].get("annotations") or {}).get("helm.sh/resource-policy") == "keep", s["metadata"]


def pod_containers(w: dict[str, Any]) -> list[dict[str, Any]]:
    spec = w["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def assert_restricted_pods(objs: list[dict[str, Any]]) -> None:
    for w in objs:
        if w["kind"] not in {"StatefulSet", "Deployment", "CronJob", "Job"}:
            continue
        tmpl = w["spec"]["jobTemplate"]["spec"]["template"] if w["kind"] == "CronJob" else w["spec"]["template"]
        spec = tmpl["spec"]
        where = f"{w['kind']}/{w['metadata']['name']}"
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("enableServiceLinks") is False, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert c["resources"]["requests"] and c["resources"]["limits"], f"{where}/{c['name']}"
            if w["kind"] in {"StatefulSet", "Deployment"} and c in spec["containers"]:
                assert "readinessProbe" in c and "livenessProbe" in c, f"{where}/{c['name']} lacks probes"


# ------------------------------------------------------------------------------------------- database
def test_database_ha_is_cnpg_cluster_and_pooler_named_for_the_contract() -> None:
    db = component(render("prod"), "database")
    assert kinds(db) >= {"Cluster", "Pooler", "Secret", "PodDisruptionBudget"}
    assert not kinds(db) & {"StatefulSet", "Deployment"}, "ha mode must not render the standalone server"
    cluster = next(o for o in db if o["kind"] == "Cluster")["spec"]
    assert cluster["instances"] == 3
    assert cluster["affinity"]["enablePodAntiAffinity"] is True
    assert cluster["bootstrap"]["initdb"] == {
        "database": "langflow",
        "owner": "langflow",
        "secret": {"name": f"{R}-database-credentials"},
        "encoding": "UTF8",
    }
    assert cluster["walStorage"]["size"], "prod puts WAL on its own volume"
    assert cluster["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    pooler = next(o for o in db if o["kind"] == "Pooler")
    assert pooler["metadata"]["name"] == f"{R}-database"  # CNPG names the pooler's Service after it
    assert pooler["spec"]["type"] == "rw" and pooler["spec"]["cluster"]["name"] == f"{R}-database-pg"
    secret = next(o for o in db if o["kind"] == "Secret")
    assert secret["type"] == "kubernetes.io/basic-auth" and secret["metadata"]["name"] == f"{R}-database-credentials"
    assert set(secret_data(secret)) == {"username", "password"}
    assert_kept_secret(secret)


def test_database_ha_pod_monitor_only_with_the_prometheus_operator_api() -> None:
    plain = next(o for o in render("prod").of_kind("Cluster"))
    assert plain["spec"]["monitoring"]["enablePodMonitor"] is False
    with_api = helm.render_profile("prod", api_versions=["monitoring.coreos.com/v1"])
    assert next(iter(with_api.of_kind("Cluster")))["spec"]["monitoring"]["enablePodMonitor"] is True


def test_database_standalone_statefulset() -> None:
    db = component(render("dev"), "database")
    assert not kinds(db) & {"Cluster", "Pooler"}
    sts = next(o for o in db if o["kind"] == "StatefulSet")
    svc = next(o for o in db if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-database")
    assert svc["spec"]["ports"][0]["port"] == 5432
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert c["securityContext"]["runAsUser"] == 999
    assert "pg_isready" in " ".join(c["readinessProbe"]["exec"]["command"])
    assert set(secret_data(next(o for o in db if o["kind"] == "Secret"))) == {
        "username",
        "password",
        "superuser-password",
    }
    cm = next(o for o in db if o["kind"] == "ConfigMap")
    assert {"postgresql.conf", "pg_hba.conf", "langflow-init.psql", "10-langflow.sh"} <= set(cm["data"])
    assert "trust" not in cm["data"]["pg_hba.conf"]
    assert_restricted_pods(db)


def test_database_standalone_mounts_an_existing_claim_instead_of_making_one() -> None:
    """database.standalone.storage.existingClaim (issue 17, item 6): the StatefulSet makes no PVC of its own and
    PostgreSQL's data mount is the user's claim; the key is refused where it does nothing (the HA Cluster)."""
    plain = next(o for o in component(render("dev"), "database") if o["kind"] == "StatefulSet")
    (template,) = plain["spec"]["volumeClaimTemplates"]
    pg = plain["spec"]["template"]["spec"]["containers"][0]
    data_path = next(vm["mountPath"] for vm in pg["volumeMounts"] if vm["name"] == template["metadata"]["name"])
    sts = next(
        o
        for o in component(render("dev", **{"database.standalone.storage.existingClaim": "restored-pg"}), "database")
        if o["kind"] == "StatefulSet"
    )
    assert not sts["spec"].get("volumeClaimTemplates"), "a PVC of its own next to the user's"
    pod = sts["spec"]["template"]["spec"]
    mount = next(vm for vm in pod["containers"][0]["volumeMounts"] if vm["mountPath"] == data_path)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "restored-pg"}
    with pytest.raises(helm.HelmError, match="existingClaim"):
        render("prod", **{"database.ha.storage.existingClaim": "restored-pg"})


def test_database_external_is_an_externalname_and_no_pods() -> None:
    db = component(render("aws"), "database")
    svc = next(o for o in db if o["kind"] == "Service")
    assert svc["metadata"]["name"] == f"{R}-database" and svc["spec"]["type"] == "ExternalName"
    assert svc["spec"]["externalName"].endswith(".rds.amazonaws.com")
    assert "Secret" not in kinds(db), "external mode uses global.database.existingSecret"
    assert {o["kind"] for o in db if o["kind"] in {"StatefulSet", "Cluster", "Pooler", "Deployment"}} == set()


def test_database_external_requires_host_and_secret() -> None:
    with pytest.raises(helm.HelmError, match=r"database.external.host"):
        render("dev", **{"database.mode": "external"})
    with pytest.raises(helm.HelmError, match=r"global.database.existingSecret"):
        render("dev", **{"database.mode": "external", "database.external.host": "db.example.com"})


@pytest.mark.parametrize(
    ("key", "value"),
    [("database.ha.instances", 6), ("database.ha.instances", 0), ("database.mode", "replicated")],
)
def test_database_schema_limits(key: str, value: Any) -> None:
    with pytest.raises(helm.HelmError, match="schema"):
        render("prod", **{key: value})


def test_database_existing_secret_suppresses_generation() -> None:
    m = render("prod", **{"global.database.existingSecret": "mine"})
    assert not [o for o in m.of_kind("Secret") if o["metadata"]["name"] == f"{R}-database-credentials"]
    assert next(iter(m.of_kind("Cluster")))["spec"]["bootstrap"]["initdb"]["secret"]["name"] == "mine"


def _crd_schema(kind: str) -> dict[str, Any]:
    crd_dir = TOOLS / "crds" / "cnpg"
    path = crd_dir / f"postgresql.cnpg.io_{kind.lower()}s.yaml"
    assert path.exists(), f"{path} missing: run `tools/install.sh crds` (make tools does)"
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def _strict(schema: Any) -> Any:
    """CRD structural schemas let the API server prune unknown fields; reject them instead (--validate=strict)."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"database.ha.walStorage.enabled": False, "database.ha.barmanObjectStore.credentialsSecret": ""},
        {"database.ha.instances": 5, "database.ha.minSyncReplicas": 1, "database.ha.maxSyncReplicas": 2},
        {
            "database.ha.recovery.enabled": True,
            "database.ha.recovery.destinationPath": "s3://langflow-prod-backups/cnpg",
            "database.ha.recovery.serverName": "lf-database-pg",
            "database.ha.recovery.targetTime": "2026-11-24T21:00:00Z",
            "database.ha.barmanObjectStore.serverName": "lf-database-pg-restored",
        },
    ],
    ids=["prod", "iam-no-wal", "five-sync", "pitr-recovery"],
)
def test_cnpg_objects_validate_against_the_crd(values: dict[str, Any]) -> None:
    m = render("prod", **values)
    checked = 0
    for kind in ("Cluster", "Pooler", "ScheduledBackup"):
        schema = _strict(_crd_schema(kind))
        for obj in m.of_kind(kind):
            body = {k: v for k, v in obj.items() if k != "metadata"}
            body["metadata"] = {}
            jsonschema.validate(body, schema)
            checked += 1
    assert checked == 3


def test_database_pitr_recovery_bootstrap() -> None:
    values = {
        "database.ha.recovery.enabled": True,
        "database.ha.recovery.destinationPath": "s3://langflow-prod-backups/cnpg",
        "database.ha.recovery.serverName": "lf-database-pg",
        "database.ha.recovery.targetTime": "2026-11-24T21:00:00Z",
    }
    with pytest.raises(helm.HelmError, match=r"serverName must differ"):
        render("prod", **values)  # prod archives to the same bucket: the new cluster would overwrite the origin
    spec = next(
        iter(render("prod", **values, **{"database.ha.barmanObjectStore.serverName": "pg2"}).of_kind("Cluster"))
    )["spec"]
    assert "initdb" not in spec["bootstrap"]
    assert spec["bootstrap"]["recovery"]["source"] == spec["externalClusters"][0]["name"]
    assert spec["bootstrap"]["recovery"]["recoveryTarget"] == {"targetTime": "2026-11-24T21:00:00Z"}
    assert spec["externalClusters"][0]["barmanObjectStore"]["serverName"] == "lf-database-pg"
    assert spec["backup"]["barmanObjectStore"]["serverName"] == "pg2"


def test_cnpg_validation_catches_a_wrong_field() -> None:
    cluster = next(iter(render("prod").of_kind("Cluster")))
    body = {k: v for k, v in cluster.items() if k != "metadata"}
    body["spec"] = {**body["spec"], "storage": {**body["spec"]["storage"], "sizee": "1Gi"}}
    with pytest.raises(jsonschema.ValidationError, match="sizee"):
        jsonschema.validate(body, _strict(_crd_schema("Cluster")))


# --------------------------------------------------------------------------------------------- broker
def test_broker_rabbitmq_cluster() -> None:
    b = component(render("prod"), "broker")
    sts = next(o for o in b if o["kind"] == "StatefulSet")
    assert sts["spec"]["replicas"] == 3 and sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["template"]["spec"]["automountServiceAccountToken"] is True  # peer discovery
    role = next(o for o in b if o["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["endpoints"], "verbs": ["get"]}]
    svc = next(o for o in b if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-broker")
    assert {p["port"] for p in svc["spec"]["ports"]} == {5672, 15672, 15692}
    headless = next(o for o in b if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-broker-headless")
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    conf = next(o for o in b if o["kind"] == "ConfigMap")["data"]["rabbitmq.conf"]
    for line in (
        "cluster_formation.peer_discovery_backend = rabbit_peer_discovery_k8s",
        f"cluster_formation.k8s.service_name = {R}-broker-headless",
        "cluster_partition_handling = pause_minority",
        "prometheus.tcp.port = 15692",
        "management.tcp.port = 15672",
    ):
        assert line in conf
    pdb = next(o for o in b if o["kind"] == "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert_restricted_pods(b)


def test_broker_secret_urls_share_one_password() -> None:
    b = component(render("prod"), "broker")
    s = next(o for o in b if o["kind"] == "Secret")
    assert s["metadata"]["name"] == f"{R}-broker-credentials"
    assert_kept_secret(s)
    d = secret_data(s)
    assert {"username", "password", "erlang-cookie", "amqp-url", "management-url", "definitions.json"} <= set(d)
    # each user's name and password, as the Secret's keys give them ("" = the application's)
    users = {d[f"{p}username"]: d[f"{p}password"] for p in ("", "monitoring-", "admin-")}
    assert len(users) == 3, "the application, KEDA and the administrator share a user"
    for key, port in (("amqp-url", 5672), ("monitoring-amqp-url", 5672), ("management-url", 15672)):
        u = urllib.parse.urlsplit(d[key])
        assert u.username in users and u.password == users[u.username], f"{key}: another password than its user's"
        assert (u.hostname, u.port) == (f"{R}-broker.{NS}.svc.cluster.local", port)
    defs = json.loads(d["definitions.json"])
    assert {u["name"]: u["password"] for u in defs["users"]} == users, "the definitions' users differ from the Secret"


def test_broker_definitions_follow_global_queue_names() -> None:
    m = render(
        "prod",
        **{"global.broker.queue": "jobs.q", "global.broker.deadLetterQueue": "jobs.dead", "global.broker.vhost": "lf"},
    )
    d = secret_data(next(o for o in m.of_kind("Secret") if o["metadata"]["name"] == f"{R}-broker-credentials"))
    defs = json.loads(d["definitions.json"])
    queues = {q["name"]: q for q in defs["queues"]}
    assert queues["jobs.q"]["arguments"] == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "jobs.dead",
    }
    assert queues["jobs.dead"]["arguments"] == {"x-queue-type": "quorum"} and queues["jobs.q"]["vhost"] == "lf"
    assert defs["policies"][0]["pattern"] == "^jobs\\.q$"
    assert d["amqp-url"].endswith(":5672/lf")


def test_broker_redis_sentinel_and_primary_proxy() -> None:
    b = component(render("redis-queue"), "broker")
    sts = {o["metadata"]["name"]: o for o in b if o["kind"] == "StatefulSet"}
    assert sts[f"{R}-broker-redis"]["spec"]["replicas"] == 3
    assert sts[f"{R}-broker-sentinel"]["spec"]["replicas"] == 3
    assert "RabbitMQ" not in json.dumps(b) and "Role" not in kinds(b)
    svc = next(o for o in b if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-broker")
    assert {p["port"] for p in svc["spec"]["ports"]} == {6379, 26379}
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "haproxy"
    cm = next(o for o in b if o["kind"] == "ConfigMap")["data"]
    assert "requirepass" not in cm["redis.conf"] and "tcp-check expect string role:master" in cm["haproxy.cfg"]
    d = secret_data(next(o for o in b if o["kind"] == "Secret"))
    assert d["redis-url"] == f"redis://:{d['password']}@{R}-broker.{NS}.svc.cluster.local:6379/0"
    assert_restricted_pods(b)


def test_broker_external_renders_no_pods_and_mode_must_match_global_type() -> None:
    b = component(render("aws"), "broker")
    assert not kinds(b) & {"StatefulSet", "Deployment", "Secret", "Service"}
    with pytest.raises(helm.HelmError, match=r"global\.broker\.type"):
        render("prod", **{"broker.mode": "redis"})


@pytest.mark.parametrize(("key", "value"), [("broker.replicas", 6), ("broker.replicas", 0), ("broker.mode", "kafka")])
def test_broker_schema_limits(key: str, value: Any) -> None:
    with pytest.raises(helm.HelmError, match="schema"):
        render("prod", **{key: value})


# ---------------------------------------------------------------------------------------- vector store
def test_vectorstore_qdrant_cluster() -> None:
    v = component(render("prod"), "vectorstore")
    sts = next(o for o in v if o["kind"] == "StatefulSet")
    assert sts["spec"]["replicas"] == 2
    c = sts["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in c["ports"]} == {6333, 6334, 6335}
    env = {e["name"]: e for e in c["env"]}
    assert env["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{R}-vectorstore-credentials",
        "key": "api-key",
    }
    cm = next(o for o in v if o["kind"] == "ConfigMap")["data"]
    assert "--bootstrap" in cm["start.sh"] and "p2p:\n    port: 6335" in cm["production.yaml"].replace("  p2p", "p2p")
    svc = next(o for o in v if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-vectorstore")
    assert {p["port"] for p in svc["spec"]["ports"]} == {6333, 6334}
    assert "api-key" in secret_data(next(o for o in v if o["kind"] == "Secret"))
    assert_restricted_pods(v)


@pytest.mark.parametrize(("profile", "ports"), [("weaviate", {8080, 50051, 2112}), ("milvus", {19530, 9091})])
def test_vectorstore_alternatives(profile: str, ports: set[int]) -> None:
    v = component(render(profile), "vectorstore")
    svc = next(o for o in v if o["kind"] == "Service" and o["metadata"]["name"] == f"{R}-vectorstore")
    assert {p["port"] for p in svc["spec"]["ports"]} == ports
    assert [o["spec"]["template"]["spec"]["containers"][0]["name"] for o in v if o["kind"] == "StatefulSet"] == [
        profile
    ]
    assert_restricted_pods(v)


def test_vectorstore_mounts_an_existing_claim_with_one_replica_only() -> None:
    """vectorstore.persistence.existingClaim (issue 17, item 6): with one replica the StatefulSet mounts the
    user's claim where its own PVC went and renders no volumeClaimTemplate; with more replicas it is refused,
    naming the key (every node needs its own volume)."""
    key = "vectorstore.persistence.existingClaim"
    plain = next(o for o in component(render("dev"), "vectorstore") if o["kind"] == "StatefulSet")
    assert plain["spec"]["replicas"] == 1, "the dev profile's vector store is expected to run one node"
    (template,) = plain["spec"]["volumeClaimTemplates"]
    c = plain["spec"]["template"]["spec"]["containers"][0]
    data_path = next(vm["mountPath"] for vm in c["volumeMounts"] if vm["name"] == template["metadata"]["name"])
    sts = next(
        o for o in component(render("dev", **{key: "restored-qdrant"}), "vectorstore") if o["kind"] == "StatefulSet"
    )
    assert not sts["spec"].get("volumeClaimTemplates")
    pod = sts["spec"]["template"]["spec"]
    mount = next(vm for vm in pod["containers"][0]["volumeMounts"] if vm["mountPath"] == data_path)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "restored-qdrant"}
    with pytest.raises(helm.HelmError, match=r"vectorstore\.persistence\.existingClaim .*vectorstore\.replicas 1"):
        render("dev", **{key: "restored-qdrant", "vectorstore.replicas": 3})


@pytest.mark.parametrize("profile", ["dev", "redis-queue"])
def test_broker_mounts_an_existing_claim_with_one_replica_only(profile: str) -> None:
    """broker.persistence.existingClaim (issue 17, item 6): RabbitMQ's node (dev) or Redis's data node
    (redis-queue) mounts the user's claim where its own PVC went, with no volumeClaimTemplate left; with more
    than one replica it is refused, naming the key (every node needs its own volume)."""
    key = "broker.persistence.existingClaim"

    def data_statefulset(m: helm.Manifest) -> dict[str, Any]:
        """The broker StatefulSet whose containers mount a volume named data (RabbitMQ's, or Redis's data nodes)."""
        (sts,) = [
            o
            for o in component(m, "broker")
            if o["kind"] == "StatefulSet"
            and any(
                vm["name"] == "data" for c in o["spec"]["template"]["spec"]["containers"] for vm in c["volumeMounts"]
            )
        ]
        return sts

    plain = data_statefulset(render(profile, **{"broker.replicas": 1}))
    (template,) = plain["spec"]["volumeClaimTemplates"]
    containers = plain["spec"]["template"]["spec"]["containers"]
    data_path = next(
        vm["mountPath"] for c in containers for vm in c["volumeMounts"] if vm["name"] == template["metadata"]["name"]
    )
    sts = data_statefulset(render(profile, **{"broker.replicas": 1, key: "restored-broker"}))
    assert not sts["spec"].get("volumeClaimTemplates")
    pod = sts["spec"]["template"]["spec"]
    mount = next(vm for c in pod["containers"] for vm in c["volumeMounts"] if vm["mountPath"] == data_path)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "restored-broker"}
    with pytest.raises(helm.HelmError, match=r"broker\.persistence\.existingClaim .*broker\.replicas 1"):
        render(profile, **{"broker.replicas": 3, key: "restored-broker"})


def test_vectorstore_external_renders_nothing_to_run() -> None:
    v = component(render("external"), "vectorstore")
    assert not kinds(v) & {"StatefulSet", "Secret", "Service"}


@pytest.mark.parametrize(
    ("key", "value"), [("vectorstore.replicas", 6), ("vectorstore.replicas", 0), ("vectorstore.mode", "pinecone")]
)
def test_vectorstore_schema_limits(key: str, value: Any) -> None:
    with pytest.raises(helm.HelmError, match="schema"):
        render("prod", **{key: value})


def claims(m: helm.Manifest) -> dict[str, str | None]:
    """Every volume the release asks storage for, by where it is declared, with its StorageClass."""
    out: dict[str, str | None] = {}
    for o in m.objects:
        where = f"{o['kind']}/{o['metadata']['name']}"
        if o["kind"] == "PersistentVolumeClaim":
            out[where] = o["spec"].get("storageClassName")
        for t in (o.get("spec") or {}).get("volumeClaimTemplates") or []:
            out[f"{where} {t['metadata']['name']}"] = t["spec"].get("storageClassName")
        if o["kind"] == "Cluster" and o["apiVersion"].startswith("postgresql.cnpg.io/"):
            for key in ("storage", "walStorage"):
                if key in o["spec"]:
                    out[f"{where} {key}"] = o["spec"][key].get("storageClass")
    return out


@pytest.mark.parametrize("profile", ["dev", "prod", "redis-queue", "weaviate", "milvus"])
def test_global_storage_class_reaches_every_volume(profile: str) -> None:
    """global.storageClass is the StorageClass of every PVC, volumeClaimTemplate and CloudNativePG volume the
    release asks for (the IDE's data volume as a PVC too); a component's own storageClass still wins."""
    m = helm.render_profile(profile, set_values={"global.storageClass": "fast", "ide.dataVolume.type": "pvc"})
    found = claims(m)
    assert found, f"{profile}: no volume claims rendered"
    missed = {w: sc for w, sc in found.items() if sc != "fast"}
    assert not missed, f"{profile}: volumes without global.storageClass: {missed}"
    own = helm.render_profile(
        profile, set_values={"global.storageClass": "fast", "broker.persistence.storageClass": "own"}
    )
    broker = {w: sc for w, sc in claims(own).items() if "broker" in w}
    assert not broker or set(broker.values()) == {"own"}, broker


def test_ide_data_volume_can_be_an_existing_claim() -> None:
    """dataVolume.existingClaim: the IDE mounts the user's PVC and the chart renders none of its own."""
    m = helm.render_profile("prod", set_values={"ide.dataVolume.type": "pvc", "ide.dataVolume.existingClaim": "mine"})
    assert not [o for o in m.of_kind("PersistentVolumeClaim") if o["metadata"]["name"].startswith(f"{R}-ide")]
    pod = m.get("Deployment", f"{R}-ide")["spec"]["template"]["spec"]
    (data,) = [v for v in pod["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "mine"}}


# --- transport security: libpq clients verify the database server (issue 16, bug 11) ----------------------------
VERIFYING = {"verify-ca", "verify-full"}
RESTORE = {"database.restore.enabled": True, "database.restore.id": "tls-check"}


def pod_spec(w: dict[str, Any]) -> dict[str, Any]:
    tmpl = w["spec"]["jobTemplate"]["spec"]["template"] if w["kind"] == "CronJob" else w["spec"]["template"]
    return tmpl["spec"]


def libpq_clients(m: helm.Manifest) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every container of the render that connects to PostgreSQL (a Langflow database URL, or libpq's PGHOST),
    with the pod spec it runs in."""
    out = []
    for w in m.workloads():
        spec = pod_spec(w)
        for c in spec.get("initContainers", []) + spec["containers"]:
            names = {e["name"] for e in c.get("env") or []}
            if names & {"LANGFLOW_DATABASE_URL", "PGHOST"}:
                out.append((f"{w['kind']}/{w['metadata']['name']}/{c['name']}", spec, c))
    return out


def libpq_settings(c: dict[str, Any]) -> dict[str, str]:
    """What libpq reads in this container: host, sslmode (the URL's, else PGSSLMODE) and PGSSLROOTCERT."""
    e = {x["name"]: x.get("value") for x in c.get("env") or []}
    url = e.get("LANGFLOW_DATABASE_URL")
    if url:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        sslmode = dict(urllib.parse.parse_qsl(parts.query)).get("sslmode", "")
    else:
        host, sslmode = e.get("PGHOST") or "", e.get("PGSSLMODE") or ""
    return {"host": host, "sslmode": sslmode, "rootcert": e.get("PGSSLROOTCERT") or ""}


def mounted_secret_file(spec: dict[str, Any], c: dict[str, Any], path: str) -> tuple[str, str] | None:
    """(Secret name, key) of the Secret file the container sees at `path`, or None."""
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        prefix = m["mountPath"].rstrip("/") + "/"
        if not path.startswith(prefix):
            continue
        secret = volumes.get(m["name"], {}).get("secret")
        if not secret:
            return None
        rel = path[len(prefix) :]
        for item in secret.get("items") or [{"key": rel, "path": rel}]:
            if item["path"] == rel:
                return secret["secretName"], item["key"]
    return None


def test_prod_clients_verify_the_server_against_cloudnativepg_ca() -> None:
    """prod: every libpq client (IDE, runtime and its migration wait, backup, restore) verifies the server
    (verify-full) against CloudNativePG's server CA (Secret "<cluster>-ca", key ca.crt), mounted and named by
    PGSSLROOTCERT; the host they dial is the Pooler, whose certificate (CloudNativePG gives the Pooler the cluster's
    server certificate) names it through the Cluster's serverAltDNSNames."""
    m = render("prod", **RESTORE)
    (cluster,) = m.of_kind("Cluster")
    (pooler,) = m.of_kind("Pooler")
    alt_names = set((cluster["spec"].get("certificates") or {}).get("serverAltDNSNames") or [])
    clients = libpq_clients(m)
    where = {w for w, _, _ in clients}
    assert {"Deployment/lf-ide/langflow", "StatefulSet/lf-runtime/langflow"} <= where, where
    assert any(w.startswith("CronJob/") for w in where) and any(w.startswith("Job/") for w in where), where
    for w, spec, c in clients:
        s = libpq_settings(c)
        assert s["sslmode"] == "verify-full", (w, s)
        assert s["rootcert"], f"{w}: no PGSSLROOTCERT"
        assert mounted_secret_file(spec, c, s["rootcert"]) == (f"{cluster['metadata']['name']}-ca", "ca.crt"), w
        assert s["host"] == pooler["metadata"]["name"], (w, s["host"])
        assert {s["host"], f"{s['host']}.{NS}", f"{s['host']}.{NS}.svc"} <= alt_names, (w, alt_names)


def test_verifying_without_a_ca_is_refused_and_a_ca_of_yours_is_mounted() -> None:
    """sslmode verify-ca/verify-full with no CA to verify against fails the render, naming the key; an external
    server's CA (e.g. RDS's bundle) comes from global.database.tls; without verification nothing is mounted."""
    external = {"global.database.host": "db.example.org", "global.database.sslmode": "verify-full"}
    with pytest.raises(helm.HelmError, match=r"VALUES VALIDATION:\n.*global\.database\.tls\.caSecret"):
        render("prod", **external)
    with pytest.raises(helm.HelmError, match=r"VALUES VALIDATION:\n.*global\.database\.tls\.caSecret"):
        render("dev", **{"global.database.sslmode": "verify-ca"})  # the standalone server: the CA is yours
    m = render(
        "aws",
        **{
            "global.database.sslmode": "verify-full",
            "global.database.tls.caSecret": "rds-ca",
            "global.database.tls.caKey": "global-bundle.pem",
        },
    )
    clients = libpq_clients(m)
    assert clients
    for w, spec, c in clients:
        s = libpq_settings(c)
        assert s["sslmode"] == "verify-full" and mounted_secret_file(spec, c, s["rootcert"]) == (
            "rds-ca",
            "global-bundle.pem",
        ), (w, s)
    for w, _, c in libpq_clients(render("dev")):
        s = libpq_settings(c)
        assert s["sslmode"] not in VERIFYING and not s["rootcert"], (w, s)


# --- credentials from mounted files, not env (issue 16, bug 12) -------------------------------------------------
BACKUP_VALUES = {
    "database.backup.s3.credentialsSecret": "backup-s3",
    "database.restore.enabled": True,
    "database.restore.id": "files-check",
}


def test_backup_and_restore_read_credentials_from_mounted_files() -> None:
    """The backup CronJob's and restore Job's containers hold no secret in their environment: libpq's password comes
    from PGPASSFILE and aws-cli's keys from AWS_SHARED_CREDENTIALS_FILE, both written at start from the Secret files
    mounted into the step that needs them (the database password only where PostgreSQL is dialled, the S3 keys only
    where the bucket is); so the objects need no scanner exception for secrets in env (CKV_K8S_35)."""
    m = render("prod", **BACKUP_VALUES)
    db_secret = next(
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in m.get("Deployment", "lf-ide")["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "PGPASSWORD"
    )
    jobs = [m.get("CronJob", f"{R}-database-backup"), m.get("Job", f"{R}-database-restore")]
    for w in jobs:
        annotations = w["metadata"].get("annotations") or {}
        assert not [v for v in annotations.values() if str(v).startswith("CKV_K8S_35")], annotations
        spec = pod_spec(w)
        for c in spec.get("initContainers", []) + spec["containers"]:
            where = f"{w['kind']}/{w['metadata']['name']}/{c['name']}"
            env = {e["name"]: e for e in c.get("env") or []}
            assert not [n for n, e in env.items() if "secretKeyRef" in (e.get("valueFrom") or {})], (where, env)
            assert not {"PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), where
            mounted = {
                v["secret"]["secretName"]
                for v in spec["volumes"]
                if "secret" in v and v["name"] in {vm["name"] for vm in c["volumeMounts"]}
            }
            if "postgres" in c["image"]:  # the steps that dial PostgreSQL (pg_dump, psql, pg_restore)
                assert env["PGPASSFILE"]["value"].startswith("/tmp/"), where  # the pod's writable emptyDir
                assert db_secret in mounted and "backup-s3" not in mounted, (where, mounted)
            else:
                assert env["AWS_SHARED_CREDENTIALS_FILE"]["value"].startswith("/tmp/"), where
                assert "backup-s3" in mounted and db_secret not in mounted, (where, mounted)
