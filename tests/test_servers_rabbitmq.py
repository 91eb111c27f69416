"""servers: the broker chart's rendered RabbitMQ configuration runs a real 3-node cluster that loses no message.

Rendered from the prod profile: rabbitmq.conf and enabled_plugins (ConfigMap), definitions.json and the Erlang
cookie (Secret). Changed for one machine (tests/harness/data_tier.py, RABBITMQ_REPLACED): ports, the definitions
path, and Kubernetes peer discovery -> classic_config (no API server here); the 3.13-only
continuous-membership-reconciliation keys are dropped for Debian's 3.10, which the test replaces by
`rabbitmq-queues grow`. Everything else (partition handling, alarms, plugins, users, queues, policy)
is used as rendered.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
from pika.exceptions import AMQPError, ChannelClosedByBroker, ConnectionClosedByBroker, ProbableAccessDeniedError

from tests.harness import sandbox
from tests.harness.data_tier import RabbitCluster, rabbitmq_cluster, rendered_data
from tests.harness.langflow import resolve_env
from tests.harness.servers import RABBITMQ_BIN, RabbitMQ, free_port, wait_for

RECONCILIATION = "quorum_queue.continuous_membership_reconciliation"  # 3.13+ keys

pytestmark = pytest.mark.servers

RELEASE = "lf"
NS = "langflow"
MESSAGES = 3000
STOP_AFTER = 800  # confirmed messages before the queue leader's node is stopped
VHOST, QUEUE, DLQ = "/", "langflow.flow-runs", "langflow.flow-runs.dlq"  # the prod profile's global.broker


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    r = rendered_data("prod")
    cm = r.configmaps[f"{RELEASE}-broker-config"]
    secret = r.secrets[f"{RELEASE}-broker-credentials"]
    return {
        "rabbitmq.conf": cm["rabbitmq.conf"],
        "enabled_plugins": cm["enabled_plugins"],
        "definitions.json": secret["definitions.json"],
        "erlang-cookie": secret["erlang-cookie"],
        **{k: secret[k] for k in secret if k.endswith(("username", "password", "-url"))},
    }


@pytest.fixture(scope="module")
def cluster(rendered: dict[str, str]):  # type: ignore[no-untyped-def]
    with rabbitmq_cluster(
        config=rendered["rabbitmq.conf"],
        plugins=rendered["enabled_plugins"],
        definitions=rendered["definitions.json"],
        cookie=rendered["erlang-cookie"],
        user=rendered["username"],
        password_=rendered["password"],
        admin=(rendered["admin-username"], rendered["admin-password"]),
        size=3,
    ) as c:
        yield c


def _queue(c: RabbitCluster, node: int, vhost: str, name: str) -> dict[str, Any]:
    q = c.nodes[node].api(f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(name, safe='')}")
    assert isinstance(q, dict)
    return q


def _params(c: RabbitCluster, node: int, vhost: str) -> pika.URLParameters:
    n = c.nodes[node]
    url = f"amqp://{n.user}:{n.password}@127.0.0.1:{n.amqp_port}/{urllib.parse.quote(vhost, safe='')}"
    p = pika.URLParameters(url)
    p.blocked_connection_timeout = 30
    p.heartbeat = 30
    return p


def test_rendered_urls_carry_the_generated_password(rendered: dict[str, str]) -> None:
    url = urllib.parse.urlsplit(rendered["amqp-url"])
    assert url.username == rendered["username"] and url.password == rendered["password"]
    assert url.hostname == f"{RELEASE}-broker.langflow.svc.cluster.local" and url.port == 5672
    assert len(rendered["erlang-cookie"]) >= 32


def _as(rendered: dict[str, str], user: str, node: RabbitMQ, vhost: str = VHOST) -> pika.BlockingConnection:
    """An AMQP connection to `node` as one of the rendered users ("" = the application's, or "monitoring", "admin")."""
    prefix = f"{user}-" if user else ""
    name, pw = rendered[f"{prefix}username"], rendered[f"{prefix}password"]
    url = f"amqp://{name}:{pw}@127.0.0.1:{node.amqp_port}/{urllib.parse.quote(vhost, safe='')}"
    return pika.BlockingConnection(pika.URLParameters(url))


def _http(rendered: dict[str, str], user: str, node: RabbitMQ, method: str, path: str, **kw: Any) -> int:
    """The management API's status for `method path` as one of the rendered users."""
    prefix = f"{user}-" if user else ""
    auth = (rendered[f"{prefix}username"], rendered[f"{prefix}password"])
    url = f"http://127.0.0.1:{node.management_port}/api/{path}"
    return requests.request(method, url, auth=auth, timeout=60, **kw).status_code


def _refused(action: Callable[[], object]) -> str:
    """Run an AMQP action that the broker must refuse; returns the refusal (ACCESS_REFUSED / 403)."""
    with pytest.raises((ChannelClosedByBroker, ProbableAccessDeniedError, ConnectionClosedByBroker)) as exc:
        action()
    return str(exc.value)


@pytest.mark.timeout(240)
def test_each_broker_user_has_only_its_rights(cluster: RabbitCluster, rendered: dict[str, str]) -> None:
    """The three users of the rendered definitions on the real broker: the application's (no tags, its vhost only)
    publishes and consumes but has no management API; KEDA's (monitoring) reads the queue depth over AMQP and the
    API and can neither publish, consume nor change anything; the administrator can. Their URLs in the Secret
    name the user each one is for."""
    defs = json.loads(rendered["definitions.json"])
    queue = defs["queues"][0]["name"]
    node = cluster.nodes[0]
    quoted = urllib.parse.quote(queue, safe="")
    vh = urllib.parse.quote(VHOST, safe="")
    for key, user in (("amqp-url", ""), ("monitoring-amqp-url", "monitoring"), ("management-url", "monitoring")):
        prefix = f"{user}-" if user else ""
        assert urllib.parse.urlsplit(rendered[key]).username == rendered[f"{prefix}username"], key
    assert len({rendered["username"], rendered["monitoring-username"], rendered["admin-username"]}) == 3

    # the application: publish and consume on its vhost
    app = _as(rendered, "", node)
    ch = app.channel()
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"rights-check", pika.BasicProperties(delivery_mode=2))
    got = wait_for(lambda: ch.basic_get(queue, auto_ack=True)[2], 30, "the application user to consume")
    assert got == b"rights-check"
    app.close()
    assert _http(rendered, "", node, "GET", "overview") == 401, "the application user logs into the management API"

    # an operator's second vhost: the application user has no rights there
    other = "lfp-rights-check"
    assert _http(rendered, "admin", node, "PUT", f"vhosts/{other}") in (201, 204)
    try:
        probe = {"password": "x", "tags": ""}
        made = _http(rendered, "admin", node, "PUT", "users/lfp-rights-probe", json=probe)
        assert made in (201, 204), f"the administrator cannot create a user ({made})"
        assert _http(rendered, "admin", node, "DELETE", "users/lfp-rights-probe") == 204
        refused = _refused(lambda: _as(rendered, "", node, vhost=other))
        print(f"\napplication user on vhost {other}: {refused}")
        assert _http(rendered, "monitoring", node, "PUT", f"vhosts/{other}-2") == 401, "KEDA's user makes a vhost"
    finally:
        _http(rendered, "admin", node, "DELETE", f"vhosts/{other}")

    # KEDA's user: the queue depth, as its rabbitmq trigger reads it (passive declare; or the management API)
    keda = _as(rendered, "monitoring", node)
    depth = keda.channel().queue_declare(queue, passive=True).method.message_count
    assert isinstance(depth, int)
    assert _http(rendered, "monitoring", node, "GET", f"queues/{vh}/{quoted}") == 200
    print(f"KEDA's user: passive declare of {queue} -> {depth} messages; management API queue view 200")
    refusals = {
        "publish": _refused(lambda: _confirmed_publish(keda.channel(), queue)),
        "consume": _refused(lambda: keda.channel().basic_get(queue)),
        "declare": _refused(lambda: keda.channel().queue_declare("lfp-rights-queue", durable=True)),
    }
    for what, why in refusals.items():
        assert "ACCESS_REFUSED" in why or "403" in why, f"KEDA's user may {what}: {why}"
    keda.close()


def _confirmed_publish(ch: Any, queue: str) -> None:
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"must-be-refused", pika.BasicProperties(delivery_mode=2))
    ch.basic_get(queue)  # a round trip, so the broker's channel error arrives


@pytest.mark.timeout(420)
def test_three_nodes_cluster_with_quorum_queue_and_lose_nothing(
    cluster: RabbitCluster, rendered: dict[str, str]
) -> None:
    defs = json.loads(rendered["definitions.json"])
    vhost = defs["vhosts"][0]["name"]
    queue, dlq = defs["queues"][0]["name"], defs["queues"][1]["name"]
    names = {n.nodename for n in cluster.nodes}

    # 1. the cluster formed: every node sees all three running
    def all_running() -> bool:
        nodes = cluster.nodes[0].api("nodes")
        assert isinstance(nodes, list)
        return {n["name"] for n in nodes if n.get("running")} == names

    wait_for(all_running, 60, "3 running cluster members")
    # the k8s discovery lines were the only cluster_formation lines replaced
    assert any("rabbit_peer_discovery_k8s" in line for line in cluster.removed)

    # 2. the rendered definitions: user can log in, the flow queue is a quorum queue dead-lettering into the DLQ
    q = _queue(cluster, 0, vhost, queue)
    assert q["type"] == "quorum", q
    assert q["arguments"]["x-dead-letter-exchange"] == ""
    assert q["arguments"]["x-dead-letter-routing-key"] == dlq
    assert q.get("effective_policy_definition", {}).get("dead-letter-strategy") == "at-least-once", q
    assert int(q["effective_policy_definition"]["delivery-limit"]) >= 1
    assert _queue(cluster, 0, vhost, dlq)["type"] == "quorum"

    # the queue was declared when node 1 was alone: grow it onto the joiners (what 3.13's
    # continuous membership reconciliation, enabled in the rendered config, does by itself)
    for n in cluster.nodes[1:]:
        cluster.nodes[0].ctl(
            "grow", n.nodename, "all", "--vhost-pattern", ".*", "--queue-pattern", ".*", tool="rabbitmq-queues"
        )
    wait_for(lambda: set(_queue(cluster, 0, vhost, queue).get("members", [])) == names, 60, "3 quorum members")
    leader = _queue(cluster, 0, vhost, queue)["leader"]

    # 3. dead-lettering works: a rejected message lands in the DLQ
    conn = pika.BlockingConnection(_params(cluster, 0, vhost))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"poison", pika.BasicProperties(delivery_mode=2), mandatory=True)
    method, _, body = ch.basic_get(queue)
    assert body == b"poison"
    ch.basic_reject(method.delivery_tag, requeue=False)
    wait_for(lambda: ch.queue_declare(dlq, passive=True).method.message_count == 1, 20, "dead-lettered message in DLQ")
    ch.queue_purge(dlq)
    conn.close()

    # 4. publish with confirms through a node that stays up while the queue leader's node is stopped
    leader_idx = next(i for i, n in enumerate(cluster.nodes) if n.nodename == leader)
    client_idx = (leader_idx + 1) % 3
    conn = pika.BlockingConnection(_params(cluster, client_idx, vhost))
    ch = conn.channel()
    ch.confirm_delivery()
    confirmed: list[str] = []
    failed = 0
    stopper: threading.Thread | None = None
    stop_timing: dict[str, float] = {}

    def stop_leader() -> None:
        t0 = time.monotonic()
        cluster.nodes[leader_idx].stop()
        stop_timing["stop_s"] = time.monotonic() - t0

    t_start = time.monotonic()
    deadline = t_start + 240
    for i in range(MESSAGES):
        if time.monotonic() > deadline:
            break
        msg_id = f"m{i}"
        try:
            ch.basic_publish(
                "", queue, msg_id.encode(), pika.BasicProperties(delivery_mode=2, message_id=msg_id), mandatory=True
            )
            confirmed.append(msg_id)
        except AMQPError:
            failed += 1  # nacked / unroutable: not acknowledged, so not counted as a promise
            if not conn.is_open:
                conn = pika.BlockingConnection(_params(cluster, client_idx, vhost))
                ch = conn.channel()
                ch.confirm_delivery()
        if len(confirmed) == STOP_AFTER and stopper is None:
            stopper = threading.Thread(target=stop_leader)
            stopper.start()
    publish_s = time.monotonic() - t_start
    assert stopper is not None
    stopper.join(120)
    assert not cluster.nodes[leader_idx].process.alive(), "the leader's node did not stop"

    # a new leader was elected among the two survivors
    new_leader = wait_for(
        lambda: (ld := _queue(cluster, client_idx, vhost, queue).get("leader")) != leader and ld, 60, "new leader"
    )

    # 5. consume everything: every confirmed message is there, exactly once
    consumed: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            if len(set(consumed)) >= len(confirmed):
                break
            time.sleep(0.2)
            continue
        consumed.append(body.decode())
    conn.close()
    lost = set(confirmed) - set(consumed)
    duplicates = len(consumed) - len(set(consumed))
    print(
        f"\nRabbitMQ 3 nodes: published {MESSAGES} attempts, {len(confirmed)} confirmed, {failed} nacked/failed, "
        f"leader {leader} stopped after {STOP_AFTER} confirms (stop took {stop_timing.get('stop_s', 0):.1f}s), "
        f"new leader {new_leader}; consumed {len(consumed)}, lost {len(lost)}, duplicates {duplicates}; "
        f"publishing took {publish_s:.1f}s"
    )
    assert len(confirmed) >= STOP_AFTER + 100, "publishing did not continue after the node stopped"
    assert not lost, f"{len(lost)} confirmed messages lost, e.g. {sorted(lost)[:5]}"


@pytest.mark.timeout(240)
def test_node_boots_under_the_pod_contract(tmp_path: Path) -> None:
    """One node as the StatefulSet runs it: the init container copies the cookie, then rabbitmq-server runs as
    uid 999 on a read-only root with only the pod's volumes writable, with the rendered env (long node name),
    config (Kubernetes peer discovery against a stand-in API that serves the headless Service's Endpoints) and
    definitions from the Secret mount. Changed: the 3.13-only keys dropped, the API's port added (443 needs
    privileges). The sandbox has its own network namespace; pod DNS names resolve to loopback in its /etc/hosts."""
    r = rendered_data("prod")
    m = r.manifest
    sts = m.get("StatefulSet", f"{RELEASE}-broker")
    spec = sts["spec"]["template"]["spec"]
    init_c, c = spec["initContainers"][0], spec["containers"][0]
    env = resolve_env(m, sts, c)
    fqdn = env["RABBITMQ_NODENAME"].split("@", 1)[1]
    (tmp_path / "hosts").write_text(f"127.0.0.1 localhost {fqdn} {fqdn.split('.')[0]}\n")
    volumes = {v["name"]: v for v in spec["volumes"]}
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    binds: dict[str, tuple[Path, bool]] = {"/etc/hosts": (tmp_path / "hosts", False)}
    for vm in [*init_c["volumeMounts"], *c["volumeMounts"]]:
        dest = vm["mountPath"]
        if dest in binds:
            continue
        src = tmp_path / vm["name"]
        src.mkdir(exist_ok=True)
        vol = volumes.get(vm["name"], {})
        data = (
            r.configmaps[vol["configMap"]["name"]]
            if "configMap" in vol
            else r.secrets[vol["secret"]["secretName"]]
            if "secret" in vol
            else {}
        )
        source = vol.get("configMap") or vol.get("secret") or {}
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            text = data[item["key"]]
            if item["key"] == "rabbitmq.conf":  # Debian's 3.10 refuses the 3.13-only keys (see RABBITMQ_REPLACED)
                text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{RECONCILIATION}."))
            (src / item["path"]).write_text(text)
        writable = vm["name"] in claims or "emptyDir" in vol
        binds[dest] = (src, writable)
    # what the kubelet mounts because the pod sets automountServiceAccountToken (peer discovery reads it)
    assert spec["automountServiceAccountToken"] is True
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    (sa / "token").write_text("harness-token")
    (sa / "namespace").write_text(NS)
    (sa / "ca.crt").write_text(Path("/etc/ssl/certs/ca-certificates.crt").read_text())
    binds["/run/secrets/kubernetes.io/serviceaccount"] = (sa, False)
    # a stand-in Kubernetes API inside the sandbox: it serves the headless Service's Endpoints (this pod only),
    # so peer discovery runs its real k8s code path; only its port differs (443 needs privileges here)
    api_port = free_port()
    api = tmp_path / "api"
    api.mkdir()
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=kubernetes",
            "-keyout",
            str(api / "key.pem"),
            "-out",
            str(api / "cert.pem"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    headless = f"{RELEASE}-broker-headless"
    endpoints = {"kind": "Endpoints", "subsets": [{"addresses": [{"ip": "127.0.0.1", "hostname": fqdn.split(".")[0]}]}]}
    (api / "endpoints.json").write_text(json.dumps(endpoints))
    (api / "server.py").write_text(
        "import http.server, ssl, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        ok = self.path.startswith('/api/v1/namespaces/{NS}/endpoints/{headless}')\n"
        "        body = open('/run/api/endpoints.json', 'rb').read() if ok else b'{}'\n"
        "        self.send_response(200 if ok else 404)\n"
        "        self.send_header('Content-Type', 'application/json')\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "        print('GET', self.path, file=sys.stderr, flush=True)\n"
        f"s = http.server.HTTPServer(('127.0.0.1', {api_port}), H)\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ctx.load_cert_chain('/run/api/cert.pem', '/run/api/key.pem')\n"
        "s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
        "s.serve_forever()\n"
    )
    binds["/run/api"] = (api, False)
    k8s_host = next(
        line.split("=", 1)[1].strip()
        for line in (tmp_path / "config" / "rabbitmq.conf").read_text().splitlines()
        if line.startswith("cluster_formation.k8s.host")
    )
    (tmp_path / "hosts").write_text(f"127.0.0.1 localhost {fqdn} {fqdn.split('.')[0]} {k8s_host}\n")
    with (tmp_path / "config" / "rabbitmq.conf").open("a") as f:
        f.write(f"\ncluster_formation.k8s.port = {api_port}\n")
    # mount points the host lacks (bubblewrap cannot create them under a read-only root)
    for dest in binds:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        if not Path(dest).exists():
            Path(dest).touch() if binds[dest][0].is_file() else Path(dest).mkdir(parents=True)
    uid = c["securityContext"]["runAsUser"]
    epmd = free_port()  # the sandbox has its own network namespace; a private epmd port keeps it tidy anyway

    def bwrap(argv: list[str]) -> list[str]:
        # parents first, so the PVC at /var/lib/rabbitmq/mnesia lands inside the emptyDir at /var/lib/rabbitmq
        volumes = [(src, dest, writable) for dest, (src, writable) in binds.items()]
        return sandbox.bwrap(uid, uid, volumes, argv, unshare_net=True, unshare_pid=True)

    driver = "\n".join(
        [
            "set -u",
            "/usr/bin/python3 /run/api/server.py 2> /tmp/api.log &",
            # the init container, as rendered
            " ".join(shlex.quote(a) for a in init_c["command"]),
            # the main container: the image's server script with the rendered env
            "env -i "
            + " ".join(
                shlex.quote(f"{k}={v}")
                for k, v in {**env, "PATH": f"{RABBITMQ_BIN}:/usr/bin:/bin", "ERL_EPMD_PORT": str(epmd)}.items()
            )
            + f" {RABBITMQ_BIN}/rabbitmq-server > /tmp/server.log 2>&1 &",
            "server=$!",
            "ok=0",
            "for i in $(seq 180); do",
            "  kill -0 $server 2>/dev/null || break",
            f"  if env HOME=/var/lib/rabbitmq ERL_EPMD_PORT={epmd} RABBITMQ_USE_LONGNAME=true"
            f" {RABBITMQ_BIN}/rabbitmq-diagnostics -q -n {shlex.quote(env['RABBITMQ_NODENAME'])} check_running"
            " >/dev/null 2>&1; then ok=1; break; fi",
            "  sleep 1",
            "done",
            'echo "running: $ok"',
            f"env HOME=/var/lib/rabbitmq ERL_EPMD_PORT={epmd} RABBITMQ_USE_LONGNAME=true {RABBITMQ_BIN}/rabbitmqctl -q"
            f" -n {shlex.quote(env['RABBITMQ_NODENAME'])} list_queues -p {shlex.quote(VHOST)} name type"
            " | sed 's/^/queue: /'",
            'echo "cookie: $(stat -c %a /var/lib/rabbitmq/.erlang.cookie)"',
            f"env HOME=/var/lib/rabbitmq ERL_EPMD_PORT={epmd} RABBITMQ_USE_LONGNAME=true {RABBITMQ_BIN}/rabbitmqctl -q"
            f" -n {shlex.quote(env['RABBITMQ_NODENAME'])} stop >/dev/null 2>&1",
            "sleep 2; cat /tmp/server.log /tmp/api.log >&2",
        ]
    )
    (tmp_path / "driver.sh").write_text(driver)
    cmd = bwrap(["sh", "/tmp/driver.sh"])
    cmd[cmd.index("--chdir") : cmd.index("--chdir")] = ["--ro-bind", str(tmp_path / "driver.sh"), "/tmp/driver.sh"]
    proc = subprocess.run(cmd, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=220)
    lines = proc.stdout.splitlines()
    assert "running: 1" in lines, f"node did not boot:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    queues = {tuple(line.split()[1:3]) for line in lines if line.startswith("queue: ")}
    assert (QUEUE, "quorum") in queues and (DLQ, "quorum") in queues, (queues, proc.stderr[-2000:])
    assert "cookie: 600" in lines
    assert f"/api/v1/namespaces/{NS}/endpoints/{RELEASE}-broker-headless" in proc.stderr, "peer discovery never asked"
