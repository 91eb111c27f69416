"""Multi-node data-tier servers for the `servers` and `backup` layers, started from configuration the charts render.

- `rendered_data(...)`: render a data chart and pull its config files out of the ConfigMaps/Secrets.
- `rabbitmq_cluster(...)`: N RabbitMQ nodes on loopback (distinct node names, AMQP/dist/management/metrics ports,
  a private epmd port) clustered with classic_config peer discovery.
- `redis_sentinel(...)`: a Redis primary, replicas and sentinels from the rendered redis.conf / sentinel.conf.
- `postgres_rendered(...)`: initdb + postgres with the rendered postgresql.conf / pg_hba.conf, then the rendered
  init SQL exactly as the image's entrypoint runs it; `postgres_from_chart(cm, secret)` takes them from the
  rendered ConfigMap and Secret.

Each helper says what it changes in the rendered files and why (only ports, paths and host names that must
differ when several servers share one machine, and what cannot run outside Kubernetes).
"""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import helm
from .servers import (
    LOOPBACK,
    PG_BIN,
    RABBITMQ_BIN,
    Process,
    RabbitMQ,
    ServerError,
    _chown_tree,
    _tempdir,
    free_port,
    initdb,
    kill_epmd,
    port_open,
    rabbitmq_env,
    spawn,
    wait_for,
)

# In the pod, 127.0.0.1 is the pod itself; on this machine every client connects from 127.0.0.1. The rendered
# pg_hba.conf's in-pod loopback lines are moved to an address no client uses, so a client here is treated as the
# pods' clients are (over the network), and the superuser, as in the pod, works through the socket only.
POD_LOOPBACK = "127.0.0.3"


def adapt_pg_hba(rendered: str) -> str:
    return rendered.replace("127.0.0.1/32", f"{POD_LOOPBACK}/32")


# ------------------------------------------------------------------------------------------- rendering
@dataclass
class Rendered:
    """The files a data chart renders: ConfigMap data and decoded Secret data, by object name."""

    manifest: helm.Manifest
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)


def rendered_data(profile: str, set_values: Mapping[str, Any] | None = None, values: Sequence[Path] = ()) -> Rendered:
    """Render the umbrella with a profile (and values files) and collect every ConfigMap's and Secret's files."""
    m = helm.render_profile(profile, set_values=set_values, values=values).with_generated_secrets()
    out = Rendered(m)
    for cm in m.of_kind("ConfigMap"):
        out.configmaps[cm["metadata"]["name"]] = dict(cm.get("data") or {})
    for s in m.of_kind("Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
        data.update(s.get("stringData") or {})
        out.secrets[s["metadata"]["name"]] = data
    return out


def conf_lines(text: str) -> list[str]:
    """Non-empty, non-comment lines of a key = value / key value config file."""
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ";"))]


# -------------------------------------------------------------------------------------------- RabbitMQ
# Lines of the rendered rabbitmq.conf the loopback cluster replaces, with the reason:
RABBITMQ_REPLACED = {
    "cluster_formation.": "Kubernetes peer discovery needs the API server and pod DNS: classic_config lists the nodes",
    "listeners.tcp.default": "each node needs its own AMQP port on one machine",
    "management.tcp.port": "each node needs its own management port",
    "prometheus.tcp.port": "each node needs its own metrics port",
    "load_definitions": "the definitions file lives in the node's temp dir instead of the Secret mount",
    "quorum_queue.continuous_membership_reconciliation": "RabbitMQ 3.13+ only; Debian's 3.10 refuses the key "
    "(the test grows the queue onto the new members with rabbitmq-queues grow instead)",
}


@dataclass
class RabbitCluster:
    nodes: list[RabbitMQ]
    epmd_port: int
    removed: list[str]

    def running(self) -> list[RabbitMQ]:
        return [n for n in self.nodes if n.process.alive()]


def adapt_rabbitmq_conf(
    rendered: str, *, amqp: int, mgmt: int, prom: int, definitions: Path, peers: Sequence[str]
) -> tuple[str, list[str]]:
    kept: list[str] = []
    removed: list[str] = []
    for line in rendered.splitlines():
        key = line.split("=", 1)[0].strip()
        if any(key.startswith(prefix) for prefix in RABBITMQ_REPLACED):
            removed.append(line.strip())
            continue
        kept.append(line)
    kept += [
        "cluster_formation.peer_discovery_backend = classic_config",
        *(f"cluster_formation.classic_config.nodes.{i + 1} = {p}" for i, p in enumerate(peers)),
        f"listeners.tcp.default = {LOOPBACK}:{amqp}",
        f"management.tcp.port = {mgmt}",
        f"management.tcp.ip = {LOOPBACK}",
        f"prometheus.tcp.port = {prom}",
        f"prometheus.tcp.ip = {LOOPBACK}",
        f"load_definitions = {definitions}",
    ]
    return "\n".join(kept) + "\n", removed


@contextlib.contextmanager
def rabbitmq_cluster(
    *,
    config: str,
    plugins: str,
    definitions: str,
    cookie: str,
    user: str,
    password_: str,
    admin: tuple[str, str] | None = None,
    size: int = 3,
    start_timeout: float = 180,
) -> Iterator[RabbitCluster]:
    """`size` RabbitMQ nodes from the rendered files, started one after the other (node 1 forms the cluster,
    the others find it through classic_config and join). Node names rabbit-<i>-<port>@localhost. `user` is the
    definitions' user AMQP clients connect as, `admin` the one the harness calls the management API as."""
    epmd = free_port()
    ports = [(free_port(), free_port(), free_port(), free_port()) for _ in range(size)]
    names = [f"rabbit-{i + 1}-{ports[i][0]}@localhost" for i in range(size)]
    nodes: list[RabbitMQ] = []
    removed: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            for i in range(size):
                amqp, mgmt, prom, dist = ports[i]
                base = stack.enter_context(_tempdir(f"rabbit{i + 1}"))
                (base / "definitions.json").write_text(definitions)
                conf, removed = adapt_rabbitmq_conf(
                    config, amqp=amqp, mgmt=mgmt, prom=prom, definitions=base / "definitions.json", peers=names
                )
                (base / "rabbitmq.conf").write_text(conf)
                (base / "enabled_plugins").write_text(plugins)
                (base / ".erlang.cookie").write_text(cookie)
                (base / ".erlang.cookie").chmod(0o400)
                for d in ("mnesia", "log"):
                    (base / d).mkdir()
                _chown_tree(base, "rabbitmq")
                # one private epmd for the cluster: nothing else on the machine sees these nodes
                env = rabbitmq_env(base, names[i], amqp, dist, base / "rabbitmq.conf", base / "enabled_plugins", epmd)
                proc = spawn(
                    names[i],
                    [str(RABBITMQ_BIN / "rabbitmq-server")],
                    base / "server.log",
                    env=env,
                    user="rabbitmq",
                    cwd=base,
                )
                node = RabbitMQ(names[i], amqp, mgmt, prom, dist, user, password_, base, env, proc, admin=admin)
                nodes.append(node)
                try:
                    wait_for(
                        lambda p=proc, a=amqp, m=mgmt: p.ensure_alive() and port_open(a) and port_open(m),
                        start_timeout,
                        f"RabbitMQ {names[i]} to listen",
                    )
                    wait_for(lambda n=node: n.api("overview"), 60, f"{names[i]} management API")
                except (TimeoutError, ServerError) as exc:
                    raise ServerError(f"{exc}\n--- {proc.log} ---\n{proc.tail()}") from exc
            yield RabbitCluster(nodes, epmd, removed)
        finally:
            for n in reversed(nodes):
                n.stop()
            kill_epmd(epmd)


# ----------------------------------------------------------------------------------------------- Redis
@dataclass
class RedisNode:
    port: int
    process: Process
    base: Path
    sentinel: bool = False


@dataclass
class SentinelGroup:
    password: str
    master_set: str
    redis: list[RedisNode]
    sentinels: list[RedisNode]

    def client(self, port: int):  # type: ignore[no-untyped-def]
        import redis as redis_lib

        return redis_lib.Redis(
            host=LOOPBACK, port=port, password=self.password, decode_responses=True, socket_timeout=2
        )


def adapt_redis_conf(rendered: str, *, port: int, base: Path, password_: str, primary_port: int | None) -> str:
    """The rendered redis.conf with port/bind/dir for loopback, plus what redis-start.sh appends in the pod
    (requirepass/masterauth from the Secret, replicaof the current primary)."""
    out = []
    for line in rendered.splitlines():
        key = line.strip().split(" ", 1)[0]
        if key in {"port", "bind", "dir"}:
            continue
        out.append(line)
    out += [
        f"port {port}",
        f"bind {LOOPBACK}",
        f"dir {base}",
        f"pidfile {base / 'redis.pid'}",
        'logfile ""',
        f'requirepass "{password_}"',
        f'masterauth "{password_}"',
        f"replica-announce-ip {LOOPBACK}",
    ]
    if primary_port is not None:
        out.append(f"replicaof {LOOPBACK} {primary_port}")
    return "\n".join(out) + "\n"


def adapt_sentinel_conf(
    rendered: str, *, port: int, base: Path, password_: str, master_set: str, primary_port: int
) -> str:
    """The rendered sentinel.conf with its port/dir for loopback and the monitored primary's pod DNS name and
    port replaced by 127.0.0.1:<port>, plus what sentinel-start.sh appends (auth-pass, requirepass, announce-ip)."""
    out = []
    for line in rendered.splitlines():
        s = line.strip()
        key = s.split(" ", 1)[0]
        if key in {"port", "dir"}:
            continue
        m = re.match(rf"sentinel monitor {re.escape(master_set)} (\S+) (\d+) (\d+)$", s)
        if m:
            line = f"sentinel monitor {master_set} {LOOPBACK} {primary_port} {m.group(3)}"
        out.append(line)
    out += [
        f"port {port}",
        f"bind {LOOPBACK}",
        f"dir {base}",
        'logfile ""',
        f'sentinel auth-pass {master_set} "{password_}"',
        f'requirepass "{password_}"',
        f"sentinel announce-ip {LOOPBACK}",
    ]
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def redis_sentinel(
    *, redis_conf: str, sentinel_conf: str, password_: str, master_set: str, replicas: int = 2, sentinels: int = 3
) -> Iterator[SentinelGroup]:
    group = SentinelGroup(password_, master_set, [], [])
    with contextlib.ExitStack() as stack:
        try:
            primary_port: int | None = None
            for i in range(1 + replicas):
                port = free_port()
                base = stack.enter_context(_tempdir(f"redis{i}"))
                (base / "redis.conf").write_text(
                    adapt_redis_conf(redis_conf, port=port, base=base, password_=password_, primary_port=primary_port)
                )
                proc = spawn(f"redis{i}", ["redis-server", str(base / "redis.conf")], base / "redis.log")
                node = RedisNode(port, proc, base)
                group.redis.append(node)
                wait_for(lambda p=proc, n=port: p.ensure_alive() and group.client(n).ping(), 30, f"redis{i} PING")
                if primary_port is None:
                    primary_port = port
            assert primary_port is not None
            for r in group.redis[1:]:
                wait_for(
                    lambda n=r.port: group.client(n).info("replication").get("master_link_status") == "up",
                    30,
                    f"replica {r.port} in sync",
                )
            for i in range(sentinels):
                port = free_port()
                base = stack.enter_context(_tempdir(f"sentinel{i}"))
                (base / "sentinel.conf").write_text(
                    adapt_sentinel_conf(
                        sentinel_conf,
                        port=port,
                        base=base,
                        password_=password_,
                        master_set=master_set,
                        primary_port=primary_port,
                    )
                )
                proc = spawn(f"sentinel{i}", ["redis-sentinel", str(base / "sentinel.conf")], base / "sentinel.log")
                node = RedisNode(port, proc, base, sentinel=True)
                group.sentinels.append(node)
                wait_for(lambda p=proc, n=port: p.ensure_alive() and group.client(n).ping(), 30, f"sentinel{i} PING")
            yield group
        finally:
            for n in group.sentinels + group.redis:
                n.process.stop(grace=5)


# ------------------------------------------------------------------------------------------ PostgreSQL
@dataclass
class RenderedPostgres:
    port: int
    superuser_password: str
    app_user: str
    app_password: str
    app_db: str
    base: Path
    process: Process
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"postgresql://{self.app_user}:{self.app_password}@{self.host}:{self.port}/{self.app_db}"

    def env(self, superuser: bool = False) -> dict[str, str]:
        return {
            "PATH": f"{PG_BIN}:/usr/bin:/bin",
            "PGHOST": str(self.base) if superuser else self.host,  # the superuser: the socket, as in the pod
            "PGPORT": str(self.port),
            "PGUSER": "postgres" if superuser else self.app_user,
            "PGPASSWORD": self.superuser_password if superuser else self.app_password,
            "PGDATABASE": self.app_db,
        }

    def psql(self, sql: str, *, superuser: bool = False, db: str | None = None) -> str:
        env = self.env(superuser)
        if db:
            env["PGDATABASE"] = db
        proc = subprocess.run(
            ["psql", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], env=env, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise ServerError(f"psql failed: {proc.stderr}")
        return proc.stdout.strip()

    def stop(self) -> None:
        import signal

        self.process.stop(sig=signal.SIGINT)


TLS_MOUNT = "/etc/postgresql/tls/"  # where the StatefulSet mounts database.standalone.tls.existingSecret


def adapt_postgresql_conf(rendered: str, *, port: int, socket_dir: Path, tls_dir: Path | None = None) -> str:
    """The rendered postgresql.conf with its port, socket directory and listen address for one loopback machine
    (and the TLS files' mount path moved to `tls_dir`)."""
    out = [
        ln.replace(TLS_MOUNT, f"{tls_dir}/") if tls_dir else ln
        for ln in rendered.splitlines()
        if ln.split("=", 1)[0].strip() not in {"port", "unix_socket_directories", "listen_addresses"}
    ]
    out += [f"port = {port}", f"unix_socket_directories = '{socket_dir}'", f"listen_addresses = '{LOOPBACK}'"]
    return "\n".join(out) + "\n"


def postgres_from_chart(
    cm: Mapping[str, str], secret: Mapping[str, str], *, app_db: str = "langflow", tls: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[RenderedPostgres]:
    """postgres_rendered from the standalone database's rendered ConfigMap and credentials Secret (decoded data),
    the files and keys its StatefulSet mounts."""
    return postgres_rendered(
        postgresql_conf=cm["postgresql.conf"],
        pg_hba=cm["pg_hba.conf"],
        init_psql=cm["langflow-init.psql"],
        init_sh=cm["10-langflow.sh"],
        app_user=secret["username"],
        app_password=secret["password"],
        app_db=app_db,
        superuser_password=secret["superuser-password"],
        tls=tls,
    )


@contextlib.contextmanager
def postgres_rendered(
    *,
    postgresql_conf: str,
    pg_hba: str,
    init_psql: str,
    init_sh: str,
    app_user: str,
    app_password: str,
    app_db: str,
    superuser_password: str,
    tls: Mapping[str, str] | None = None,
) -> Iterator[RenderedPostgres]:
    """initdb like the image's entrypoint (superuser postgres, scram), start postgres with the rendered
    config_file/hba_file (-c, as the StatefulSet's args do), then run the rendered 10-langflow.sh with its env.
    `tls`: the files of the TLS Secret (tls.crt, tls.key, ca.crt) the StatefulSet mounts."""
    port = free_port()
    with _tempdir("pg", owner="postgres") as base:
        data = base / "data"
        (base / "pwfile").write_text(superuser_password + "\n")
        tls_dir = None
        if tls:
            tls_dir = base / "tls"
            tls_dir.mkdir()
            for name, text in tls.items():
                (tls_dir / name).write_text(text)
                (tls_dir / name).chmod(0o600)
        conf = adapt_postgresql_conf(postgresql_conf, port=port, socket_dir=base, tls_dir=tls_dir)
        (base / "postgresql.conf").write_text(conf)
        (base / "pg_hba.conf").write_text(adapt_pg_hba(pg_hba))
        # the init script reads the init SQL from the ConfigMap mount path; point it at the temp copy
        (base / "langflow-init.psql").write_text(init_psql)
        (base / "10-langflow.sh").write_text(
            init_sh.replace("/etc/postgresql/langflow-init.psql", str(base / "langflow-init.psql"))
        )
        _chown_tree(base, "postgres")
        initdb(data, base / "pwfile")
        proc = spawn(
            "postgres",
            [
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-c",
                f"config_file={base / 'postgresql.conf'}",
                "-c",
                f"hba_file={base / 'pg_hba.conf'}",
            ],
            base / "postgres.log",
            user="postgres",
        )
        server = RenderedPostgres(port, superuser_password, app_user, app_password, app_db, base, proc)
        try:
            try:
                wait_for(
                    lambda: proc.ensure_alive() and server.psql("select 1", superuser=True, db="postgres") == "1",
                    60,
                    "PostgreSQL to accept connections",
                )
            except (TimeoutError, ServerError) as exc:
                raise ServerError(f"{exc}\n--- {proc.log} ---\n{proc.tail()}") from exc
            # what the image's entrypoint does with /docker-entrypoint-initdb.d/*.sh: run it with the pod's env,
            # the credentials as the files of the mounted Secret
            secret_dir = base / "credentials"
            secret_dir.mkdir()
            (secret_dir / "username").write_text(app_user)
            (secret_dir / "password").write_text(app_password)
            env = {
                **server.env(superuser=True),
                "PGDATABASE": "postgres",
                "POSTGRES_USER": "postgres",
                "APP_USER_FILE": str(secret_dir / "username"),
                "APP_PASSWORD_FILE": str(secret_dir / "password"),
                "APP_DB": app_db,
            }
            init = subprocess.run(
                ["sh", str(base / "10-langflow.sh")], env=env, capture_output=True, text=True, timeout=120
            )
            if init.returncode != 0:
                raise ServerError(f"rendered 10-langflow.sh failed: {init.stderr}")
            yield server
        finally:
            server.stop()


def wait_seconds(check: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """wait_for that returns the seconds it took."""
    t0 = time.monotonic()
    wait_for(check, timeout, what, interval=interval)
    return time.monotonic() - t0


def adapt_haproxy_cfg(
    rendered: str, *, redis_port: int, sentinel_port: int, redis: Sequence[int], sentinels: Sequence[int]
) -> str:
    """The rendered haproxy.cfg with its frontends bound to loopback ports and each server's pod DNS name:port
    replaced by 127.0.0.1:<that node's port> (server redisN -> data node N, sentinelN -> sentinel N)."""

    def server(m: re.Match[str]) -> str:
        kind, idx = m.group(1), int(m.group(2))
        port = (redis if kind == "redis" else sentinels)[idx]
        return f"server {kind}{idx} {LOOPBACK}:{port}"

    out = re.sub(r"server (redis|sentinel)(\d+) \S+:\d+", server, rendered)
    out = out.replace("bind :6379", f"bind {LOOPBACK}:{redis_port}").replace(
        "bind :26379", f"bind {LOOPBACK}:{sentinel_port}"
    )
    return out


@contextlib.contextmanager
def haproxy_rendered(
    cfg: str, *, password_: str, redis: Sequence[int], sentinels: Sequence[int]
) -> Iterator[tuple[int, int]]:
    """HAProxy (Debian) with the rendered haproxy.cfg; yields its (redis, sentinel) loopback ports."""
    if not shutil.which("haproxy"):
        raise ServerError("haproxy is not installed: it is a Debian package of the toolchain (tools/install.sh apt)")
    rport, sport = free_port(), free_port()
    with _tempdir("haproxy") as base:
        (base / "haproxy.cfg").write_text(
            adapt_haproxy_cfg(cfg, redis_port=rport, sentinel_port=sport, redis=redis, sentinels=sentinels)
        )
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(base / "haproxy.cfg")],
            env={"REDIS_PASSWORD": password_, "PATH": "/usr/sbin:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise ServerError(f"rendered haproxy.cfg rejected: {check.stdout}{check.stderr}")
        proc = spawn(
            "haproxy",
            ["haproxy", "-db", "-f", str(base / "haproxy.cfg")],
            base / "haproxy.log",
            env={"REDIS_PASSWORD": password_, "PATH": "/usr/sbin:/usr/bin:/bin"},
        )
        try:
            wait_for(lambda: proc.ensure_alive() and port_open(rport) and port_open(sport), 30, "HAProxy to listen")
            yield rport, sport
        finally:
            proc.stop(grace=5)
