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
import threading
import time
import urllib.parse
from typing import Any

import pika
import pytest
from pika.exceptions import AMQPError

from tests.harness.data_tier import RabbitCluster, rabbitmq_cluster, rendered_data
from tests.harness.servers import wait_for

pytestmark = pytest.mark.servers

RELEASE = "lf"
MESSAGES = 3000
STOP_AFTER = 800  # confirmed messages before the queue leader's node is stopped


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
        "username": secret["username"],
        "password": secret["password"],
        "amqp-url": secret["amqp-url"],
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
