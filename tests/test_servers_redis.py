"""servers: the broker chart's rendered Redis + Sentinel configuration fails over when the primary dies.

Rendered from the redis-queue profile: redis.conf and sentinel.conf (ConfigMap), the password (Secret). Changed
for one machine (tests/harness/data_tier.py): port/bind/dir, and the monitored primary's pod DNS name -> 127.0.0.1
and its port; appended exactly what the pods' start scripts append (requirepass/masterauth, sentinel auth-pass,
replicaof the primary). Quorum, down-after-milliseconds, failover-timeout, persistence and eviction policy are used
as rendered.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
import redis as redis_lib
from langflow_worker.brokers import NotReplicated
from langflow_worker.submit import enqueue_redis
from redis.sentinel import Sentinel

from tests.harness import sandbox
from tests.harness.data_tier import SentinelGroup, haproxy_rendered, redis_sentinel, rendered_data
from tests.harness.langflow import resolve_env
from tests.harness.servers import wait_for

pytestmark = pytest.mark.servers

RELEASE = "lf"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    r = rendered_data("redis-queue")
    cm = r.configmaps[f"{RELEASE}-broker-redis-config"]
    secret = r.secrets[f"{RELEASE}-broker-credentials"]
    m = re.search(r"^sentinel monitor (\S+) \S+ 6379 (\d+)$", cm["sentinel.conf"], re.M)
    assert m, "sentinel.conf has no monitor line"
    return {
        **cm,
        "password": secret["password"],
        "redis-url": secret["redis-url"],
        "master_set": m.group(1),
        "quorum": m.group(2),
    }


@pytest.fixture
def proxy(group: SentinelGroup, rendered: dict[str, str]):  # type: ignore[no-untyped-def]
    """The rendered HAProxy in front of the group: what "<release>-broker:6379/26379" is in the cluster."""
    with haproxy_rendered(
        rendered["haproxy.cfg"],
        password_=group.password,
        redis=[r.port for r in group.redis],
        sentinels=[s.port for s in group.sentinels],
    ) as ports:
        yield ports


@pytest.fixture
def group(rendered: dict[str, str]):  # type: ignore[no-untyped-def]
    with redis_sentinel(
        redis_conf=rendered["redis.conf"],
        sentinel_conf=rendered["sentinel.conf"],
        password_=rendered["password"],
        master_set=rendered["master_set"],
        replicas=2,
        sentinels=3,
    ) as g:
        yield g


def test_rendered_redis_conf_keeps_jobs(rendered: dict[str, str]) -> None:
    conf = rendered["redis.conf"]
    assert "maxmemory-policy noeviction" in conf and "appendonly yes" in conf
    assert "requirepass" not in conf, "the password belongs in the Secret, not the ConfigMap"
    url = urllib.parse.urlsplit(rendered["redis-url"])
    assert url.password == rendered["password"] and url.hostname == f"{RELEASE}-broker.langflow.svc.cluster.local"


def _sentinel(group: SentinelGroup) -> Sentinel:
    # configured like our clients: the sentinels' addresses, the master set name, the password for both
    return Sentinel(
        [("127.0.0.1", s.port) for s in group.sentinels],
        socket_timeout=1,
        password=group.password,
        sentinel_kwargs={"password": group.password, "socket_timeout": 1},
    )


@pytest.mark.timeout(180)
def test_sentinel_fails_over_and_clients_follow(
    group: SentinelGroup, rendered: dict[str, str], proxy: tuple[int, int]
) -> None:
    ms = group.master_set
    primary = group.redis[0]
    sentinel = _sentinel(group)

    # the sentinels found each other and the replicas
    def ready() -> bool:
        fields = group.client(group.sentinels[0].port).sentinel_master(ms)
        return int(fields["num-other-sentinels"]) == 2 and int(fields["num-slaves"]) == 2

    wait_for(ready, 60, "sentinels to discover each other and both replicas")
    assert sentinel.discover_master(ms) == ("127.0.0.1", primary.port)

    # acknowledged jobs, enqueued as producers enqueue them (langflow_worker.submit.enqueue_redis: LPUSH, then a
    # replica confirms it); the test itself waits for nothing before it kills the primary
    client = sentinel.master_for(ms, decode_responses=True)
    client.delete("jobs")
    for i in range(500):
        enqueue_redis(client, "jobs", {"job_id": f"job-{i}"})

    # the broker endpoint (HAProxy, as rendered) reaches the primary; its sentinel port reaches a sentinel
    def via_proxy() -> redis_lib.Redis:  # a new connection each time: HAProxy picks the server per connection
        return redis_lib.Redis(host="127.0.0.1", port=proxy[0], password=group.password, socket_timeout=2)

    # until the health checks have marked the replicas down (fall 2), a connection may still land on one
    wait_for(
        lambda: all(via_proxy().info("replication")["role"] == "master" for _ in range(6)),
        30,
        "HAProxy to send every connection to the primary",
    )
    assert int(via_proxy().info("server")["tcp_port"]) == primary.port
    sentinel_via_proxy = redis_lib.Redis(
        host="127.0.0.1", port=proxy[1], password=group.password, socket_timeout=2, decode_responses=True
    )
    assert sentinel_via_proxy.sentinel_get_master_addr_by_name(ms) == ("127.0.0.1", primary.port)

    # kill the primary the hard way
    t0 = time.monotonic()
    primary.process.stop(grace=5, sig=signal.SIGKILL)

    def new_primary() -> tuple[str, int] | None:
        addr = sentinel.discover_master(ms)
        return addr if addr[1] != primary.port else None

    addr = wait_for(new_primary, 90, "sentinels to promote a replica", interval=0.1)
    promoted_s = time.monotonic() - t0

    # a client configured like ours writes to the new primary (it may need a moment to accept writes)
    def writable() -> bool:
        c = sentinel.master_for(ms, decode_responses=True)
        c.rpush("jobs", "after-failover")
        return True

    wait_for(writable, 30, "the new primary to accept writes", interval=0.2)
    writable_s = time.monotonic() - t0
    c = sentinel.master_for(ms, decode_responses=True)
    jobs = c.lrange("jobs", 0, -1)

    # clients of the plain redis-url (HAProxy) follow too: the proxy sends them to the new primary
    def proxy_follows() -> bool:
        r = via_proxy()
        return int(r.info("server")["tcp_port"]) == addr[1] and bool(r.rpush("jobs", "via-proxy"))

    wait_for(proxy_follows, 30, "HAProxy to route to the new primary", interval=0.2)
    proxy_s = time.monotonic() - t0
    role = group.client(addr[1]).info("replication")["role"]
    print(
        f"\nRedis Sentinel (quorum {rendered['quorum']}, rendered down-after-milliseconds): primary :{primary.port} "
        f"killed; new primary :{addr[1]} named after {promoted_s:.1f}s, writable after {writable_s:.1f}s; "
        f"{sum(j.startswith('{') for j in jobs)}/500 acknowledged jobs present; HAProxy (rendered) routed writes to "
        f"it after {proxy_s:.1f}s"
    )
    assert role == "master"
    acknowledged = [json.loads(j)["job_id"] for j in reversed(jobs) if j.startswith("{")]  # LPUSH: newest first
    assert acknowledged == [f"job-{i}" for i in range(500)], "acknowledged jobs lost in the failover"
    assert jobs[-1] == "after-failover"
    # the other replica follows the new primary
    other = next(r for r in group.redis[1:] if r.port != addr[1])
    wait_for(
        lambda: int(group.client(other.port).info("replication").get("master_port", 0)) == addr[1],
        60,
        "the remaining replica to follow the new primary",
    )
    with pytest.raises(redis_lib.ConnectionError):
        redis_lib.Redis(host="127.0.0.1", port=primary.port, socket_timeout=1).ping()


@pytest.mark.timeout(120)
def test_a_primary_cut_off_from_its_replicas_acknowledges_no_job(
    group: SentinelGroup, rendered: dict[str, str]
) -> None:
    """Both replicas stop (SIGSTOP): the producer's enqueue is not acknowledged (no replica confirms it), and once
    the replicas' lag passes the rendered min-replicas-max-lag the primary refuses writes (min-replicas-to-write 1)
    instead of taking jobs a failover would lose. Writes resume when the replicas do."""
    lag = int(re.search(r"^min-replicas-max-lag (\d+)$", rendered["redis.conf"], re.M)[1])  # type: ignore[index]
    assert re.search(r"^min-replicas-to-write 1$", rendered["redis.conf"], re.M), "replicated Redis takes lone writes"
    # a producer's client: its socket outlasts WAIT's timeout
    primary = redis_lib.Redis(host="127.0.0.1", port=group.redis[0].port, password=group.password, socket_timeout=15)
    wait_for(lambda: int(primary.info("replication")["connected_slaves"]) == 2, 60, "both replicas to connect")
    enqueue_redis(primary, "jobs", {"job_id": "before"})
    replicas = [r.process.popen.pid for r in group.redis[1:]]
    for pid in replicas:
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        with pytest.raises(NotReplicated, match="no replica confirmed"):
            enqueue_redis(primary, "jobs", {"job_id": "while-cut-off"})

        def refused() -> bool:
            try:
                primary.lpush("probe", "x")
            except redis_lib.ResponseError as exc:
                return "NOREPLICAS" in str(exc)
            return False

        wait_for(refused, lag + 20, f"the primary to refuse writes after {lag}s without a replica", interval=0.5)
        refused_after = time.monotonic() - t0
    finally:
        for pid in replicas:
            os.kill(pid, signal.SIGCONT)
    wait_for(lambda: not refused(), 60, "writes to resume with the replicas back", interval=0.5)
    enqueue_redis(primary, "jobs", {"job_id": "after"})
    print(f"\nreplicas stopped: enqueue not acknowledged, writes refused after {refused_after:.1f}s (max lag {lag}s)")
    assert lag <= refused_after < lag + 20


@pytest.mark.timeout(120)
def test_rendered_start_scripts_under_the_pod_contract(tmp_path: Path) -> None:
    """The data node's and the sentinel's start scripts, unmodified, under bubblewrap as the pods run them: uid 999,
    read-only root, writable only the declared volumes, the rendered env (password from the Secret). Pod DNS names
    resolve to loopback through an /etc/hosts of the sandbox, which has a network namespace of its own (so the
    rendered ports 6379/26379 are used as they are)."""
    r = rendered_data("redis-queue")
    m = r.manifest
    sts = {k: m.get("StatefulSet", f"{RELEASE}-broker-{k}") for k in ("redis", "sentinel")}
    containers = {k: v["spec"]["template"]["spec"]["containers"][0] for k, v in sts.items()}
    envs = {k: resolve_env(m, sts[k], containers[k]) for k in sts}
    hosts = {envs["redis"]["MY_HOST"], envs["sentinel"]["MY_HOST"], *envs["redis"]["SENTINEL_HOSTS"].split()}
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {h}\n" for h in sorted(hosts)))
    binds: dict[str, tuple[Path, bool]] = {"/etc/hosts": (tmp_path / "hosts", False)}
    for k, c in containers.items():
        spec = sts[k]["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for vm in c["volumeMounts"]:
            dest = os.path.realpath(vm["mountPath"])
            if dest in binds:
                continue
            src = tmp_path / f"{k}-{vm['name']}"
            src.mkdir()
            vol = volumes.get(vm["name"], {})
            if "configMap" in vol:
                for key, text in r.configmaps[vol["configMap"]["name"]].items():
                    (src / key).write_text(text)
            Path(dest).mkdir(parents=True, exist_ok=True)  # bubblewrap cannot create it under a read-only root
            binds[dest] = (src, "configMap" not in vol)
    uid = containers["redis"]["securityContext"]["runAsUser"]
    password_ = envs["redis"]["REDIS_PASSWORD"]

    def launch(kind: str) -> str:
        keep = {k: v for k, v in envs[kind].items()}
        keep["PATH"] = "/usr/bin:/bin"
        assigns = " ".join(shlex.quote(f"{k}={v}") for k, v in keep.items())
        return f"env -i {assigns} {' '.join(map(shlex.quote, containers[kind]['command']))} > /tmp/{kind}.log 2>&1 &"

    driver = "\n".join(
        [
            "set -u",
            launch("redis"),
            "for i in $(seq 100); do redis-cli -p 6379 ping 2>&1 | grep -q NOAUTH && break; sleep 0.1; done",
            launch("sentinel"),
            'for i in $(seq 100); do REDISCLI_AUTH="$P" redis-cli -p 26379 ping 2>/dev/null | grep -q PONG && break;'
            " sleep 0.1; done",
            'echo "noauth: $(redis-cli -p 6379 set k v 2>&1)"',
            'echo "auth: $(REDISCLI_AUTH="$P" redis-cli -p 6379 ping 2>&1)"',
            # alone (no replica yet): min-replicas-to-write refuses the write a failover could lose
            'echo "write: $(REDISCLI_AUTH="$P" redis-cli -p 6379 set k v 2>&1)"',
            'echo "role: $(REDISCLI_AUTH="$P" redis-cli -p 6379 info replication | grep ^role: | tr -d "\\r")"',
            'echo "aof: $(REDISCLI_AUTH="$P" redis-cli -p 6379 config get appendonly | tail -n1)"',
            'echo "master: $(REDISCLI_AUTH="$P" redis-cli -p 26379 sentinel get-master-addr-by-name "$MS" | head -n1)"',
            'echo "files: $(ls /data)"',
            "cat /tmp/redis.log /tmp/sentinel.log >&2",
        ]
    )
    (tmp_path / "driver.sh").write_text(driver)
    volumes = [(src, dest, writable) for dest, (src, writable) in binds.items()]
    volumes.append((tmp_path / "driver.sh", "/tmp/driver.sh", False))
    # a pid namespace of its own: the servers the driver starts in the background end with it, not orphaned
    cmd = sandbox.bwrap(uid, uid, volumes, ["sh", "/tmp/driver.sh"], unshare_net=True, unshare_pid=True)
    proc = subprocess.run(
        cmd,
        env={"PATH": "/usr/bin:/bin", "P": password_, "MS": envs["redis"]["MASTER_SET"]},
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert proc.returncode == 0, proc.stderr
    assert "NOAUTH" in out.get("noauth", ""), (out, proc.stderr[-2000:])
    assert out["auth"] == "PONG" and out["role"] == "role:master" and out["aof"] == "yes", (out, proc.stderr[-2000:])
    assert out["write"].startswith("NOREPLICAS"), (out, "a primary without replicas must not take writes")
    assert out["master"] == envs["redis"]["DEFAULT_PRIMARY"], (out, proc.stderr[-2000:])
    assert "appendonlydir" in out["files"], out
