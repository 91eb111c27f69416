"""Real servers on loopback for the harness: RabbitMQ, Redis and PostgreSQL from Debian's packages.

Each starts on free ports in its own temporary directory, as an unprivileged user where the server wants one,
and is stopped when its context manager exits. Configuration rendered by the charts can be passed in; the
harness only appends what must differ on one machine (ports, paths, loopback addresses).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class ServerError(RuntimeError):
    """A server did not start or stop; the message carries the tail of its log."""


class ServerDied(ServerError):
    """The server process exited while it was expected to run."""


# Ports handed to servers come from below the kernel's ephemeral range (32768-60999, where outgoing connections
# get their source ports) and below Kubernetes' NodePort range (30000-32767): a server that binds its port late
# (Langflow) can then not lose it to another server's connection, so servers may start side by side. Each port
# is handed out once per session.
PORT_RANGE = (20000, 29999)
_handed_out: set[int] = set()
_ports = threading.Lock()


def free_port() -> int:
    """A TCP port free on loopback right now, never handed out before in this session."""
    with _ports:
        for _ in range(200):
            port = random.randint(*PORT_RANGE)
            if port in _handed_out:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((LOOPBACK, port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    raise ServerError(f"no free port in {PORT_RANGE} after 200 tries")


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.25) -> T:
    """Call `check` until it returns a truthy value without raising, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except ServerDied:  # waiting longer cannot help
            raise
        except Exception as exc:  # the server is not there yet
            last = exc
        time.sleep(interval)
    detail = f" (last error: {last})" if last else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def port_open(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def password(n: int = 24) -> str:
    """A URL-safe random password, like the charts generate."""
    return secrets.token_hex(n // 2)


@dataclass
class Process:
    """A child process with its log file; `stop()` terminates it (then kills it after `grace` seconds)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def ensure_alive(self) -> bool:
        """True while running; raises ServerError (with the log's tail) once the process has exited."""
        if self.popen.poll() is not None:
            raise ServerDied(f"{self.name} exited with {self.popen.returncode}:\n{self.tail()}")
        return True

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15, sig: int = signal.SIGTERM) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def spawn(
    name: str,
    cmd: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start `cmd` in its own process group with stdout/stderr to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            user=user if user and os.geteuid() == 0 else None,
            group=user if user and os.geteuid() == 0 else None,
        )
    return Process(name, popen, log)


@contextlib.contextmanager
def moto(log_dir: Path | None = None) -> Iterator[int]:
    """moto in server mode (S3, SQS, ... on one port) on a free loopback port; yields the port."""
    import sys

    port = free_port()
    with _tempdir("moto") as tmp:
        proc = spawn("moto", [str(Path(sys.executable).parent / "moto_server"), "-H", LOOPBACK, "-p", str(port)],
                     (log_dir or tmp) / "moto.log")  # fmt: skip
        try:
            wait_for(lambda: proc.ensure_alive() and port_open(port), 60, "moto_server to listen")
            yield port
        finally:
            proc.stop(grace=5)


def _chown_tree(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
        for p in path.rglob("*"):
            shutil.chown(p, user, user)


@contextlib.contextmanager
def _tempdir(prefix: str, owner: str | None = None) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"lfp-{prefix}-"))
    try:
        if owner:
            _chown_tree(d, owner)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------------------------- RabbitMQ
@dataclass
class RabbitMQ:
    """A RabbitMQ node on loopback. `url` is the AMQP URL, `management_url` the HTTP API base."""

    nodename: str
    amqp_port: int
    management_port: int
    prometheus_port: int
    dist_port: int
    user: str
    password: str
    base: Path
    env: dict[str, str]
    process: Process
    vhost: str = "/"
    host: str = LOOPBACK
    # who calls the management API, when not `user` (the broker chart's application user has no tags)
    admin: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        vhost = urllib.parse.quote(self.vhost, safe="")
        return f"amqp://{self.user}:{self.password}@{self.host}:{self.amqp_port}/{vhost}"

    @property
    def management_url(self) -> str:
        return f"http://{self.user}:{self.password}@{self.host}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.prometheus_port}/metrics"

    def ctl(self, *args: str, tool: str = "rabbitmqctl", timeout: float = 120) -> str:
        """Run rabbitmqctl (or rabbitmq-diagnostics, rabbitmq-queues, ...) against this node."""
        proc = subprocess.run(
            [str(RABBITMQ_BIN / tool), "-n", self.nodename, *args],
            env=self.env,
            user="rabbitmq" if os.geteuid() == 0 else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.base,
        )
        if proc.returncode != 0:
            raise ServerError(f"{tool} {' '.join(args)} failed: {proc.stderr or proc.stdout}")
        return proc.stdout

    def api(self, path: str) -> object:
        """GET the management API (JSON)."""
        import requests

        r = requests.get(
            f"http://{self.host}:{self.management_port}/api/{path.lstrip('/')}",
            auth=self.admin or (self.user, self.password),
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.process.alive():
            with contextlib.suppress(Exception):
                self.ctl("stop", timeout=60)
        self.process.stop(grace=30)


def rabbitmq_env(
    base: Path, nodename: str, amqp_port: int, dist_port: int, config: Path, plugins: Path, epmd_port: int
) -> dict[str, str]:
    """The environment of a RabbitMQ node (and of its CLI tools) living entirely under `base`, registered with a
    private epmd on `epmd_port` that listens on loopback only (stop it with `kill_epmd`)."""
    return {
        "ERL_EPMD_PORT": str(epmd_port),
        "ERL_EPMD_ADDRESS": LOOPBACK,
        "PATH": f"{RABBITMQ_BIN}:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(base),
        "LANG": "C.UTF-8",
        "RABBITMQ_NODENAME": nodename,
        "RABBITMQ_NODE_IP_ADDRESS": LOOPBACK,
        "RABBITMQ_NODE_PORT": str(amqp_port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(config),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_ALLOW_INPUT": "",
    }


def kill_epmd(port: int) -> None:
    """Stop the private epmd a harness RabbitMQ started on `port` (once its nodes are stopped)."""
    with contextlib.suppress(Exception):
        env = {"PATH": "/usr/bin:/bin", "ERL_EPMD_PORT": str(port)}
        subprocess.run(["epmd", "-kill"], env=env, capture_output=True, timeout=10)


@contextlib.contextmanager
def rabbitmq(
    *,
    config: str = "",
    definitions: str | None = None,
    plugins: Sequence[str] = ("rabbitmq_management", "rabbitmq_prometheus"),
    user: str = "langflow",
    password_: str | None = None,
    admin: tuple[str, str] | None = None,
    cookie: str | None = None,
    start_timeout: float = 120,
) -> Iterator[RabbitMQ]:
    """A RabbitMQ node with the management and Prometheus plugins on free loopback ports.

    `config` is rabbitmq.conf text (e.g. rendered by the broker chart); the harness appends the ports, the
    default user and, when `definitions` (definitions.json text) is given, `load_definitions` (then `user` is one
    of its users, and `admin`, when given, the one the harness calls the management API as). Settings that
    cannot work outside Kubernetes (k8s peer discovery) must be removed by the caller and said so.
    """
    pw = password_ or password()
    amqp, mgmt, prom, dist, epmd = free_port(), free_port(), free_port(), free_port(), free_port()
    nodename = f"rabbit-{amqp}@localhost"
    with _tempdir("rabbitmq") as base:
        conf = base / "rabbitmq.conf"
        lines = [
            config.rstrip(),
            f"listeners.tcp.default = {amqp}",
            f"management.tcp.port = {mgmt}",
            f"management.tcp.ip = {LOOPBACK}",
            f"prometheus.tcp.port = {prom}",
            f"prometheus.tcp.ip = {LOOPBACK}",
            f"default_user = {user}",
            f"default_pass = {pw}",
            "loopback_users = none",
        ]
        if definitions is not None:
            (base / "definitions.json").write_text(definitions)
            lines.append(f"load_definitions = {base / 'definitions.json'}")
        conf.write_text("\n".join(line for line in lines if line) + "\n")
        (base / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n")
        (base / ".erlang.cookie").write_text(cookie or secrets.token_hex(16))
        (base / ".erlang.cookie").chmod(0o400)
        for d in ("mnesia", "log"):
            (base / d).mkdir()
        _chown_tree(base, "rabbitmq")
        env = rabbitmq_env(base, nodename, amqp, dist, conf, base / "enabled_plugins", epmd)
        proc = spawn(
            "rabbitmq", [str(RABBITMQ_BIN / "rabbitmq-server")], base / "server.log", env=env, user="rabbitmq", cwd=base
        )
        node = RabbitMQ(nodename, amqp, mgmt, prom, dist, user, pw, base, env, proc, admin=admin)
        try:
            try:
                wait_for(
                    lambda: proc.ensure_alive() and port_open(amqp) and port_open(mgmt),
                    start_timeout,
                    f"RabbitMQ {nodename} to listen",
                )
                wait_for(lambda: node.api("overview"), 60, "RabbitMQ management API")
            except (TimeoutError, ServerError) as exc:
                raise ServerError(f"{exc}\n--- {proc.log} ---\n{proc.tail()}") from exc
            yield node
        finally:
            node.stop()
            kill_epmd(epmd)


# ------------------------------------------------------------------------------------------------ Redis
@dataclass
class Redis:
    port: int
    password: str | None
    base: Path
    process: Process
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def client(self):  # type: ignore[no-untyped-def]
        import redis as redis_lib

        return redis_lib.Redis(host=self.host, port=self.port, password=self.password, decode_responses=True)

    def stop(self) -> None:
        self.process.stop()


@contextlib.contextmanager
def redis(*, config: str = "", password_: str | None = "generate", start_timeout: float = 30) -> Iterator[Redis]:
    """A Redis server on a free loopback port. `config` is redis.conf text (e.g. rendered); ports, dir and
    bind are appended. `password_="generate"` (default) sets a random requirepass; None runs without auth."""
    pw = password() if password_ == "generate" else password_
    port = free_port()
    with _tempdir("redis") as base:
        lines = [
            config.rstrip(),
            f"port {port}",
            f"bind {LOOPBACK}",
            f"dir {base}",
            "daemonize no",
            f"pidfile {base / 'redis.pid'}",
            'logfile ""',
            "protected-mode yes",
        ]
        if pw:
            lines += [f"requirepass {pw}", f"masterauth {pw}"]
        (base / "redis.conf").write_text("\n".join(line for line in lines if line) + "\n")
        proc = spawn("redis", ["redis-server", str(base / "redis.conf")], base / "redis.log")
        server = Redis(port, pw, base, proc)
        try:
            try:
                wait_for(lambda: proc.ensure_alive() and server.client().ping(), start_timeout, "Redis to answer PING")
            except (TimeoutError, ServerError) as exc:
                raise ServerError(f"{exc}\n--- {proc.log} ---\n{proc.tail()}") from exc
            yield server
        finally:
            server.stop()


# ------------------------------------------------------------------------------------------- PostgreSQL
@dataclass
class Postgres:
    port: int
    user: str
    password: str
    dbname: str
    base: Path
    process: Process
    host: str = LOOPBACK
    superuser: str = "postgres"
    superuser_password: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """SQLAlchemy/Langflow style URL of the application user."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} dbname={self.dbname} user={self.user} password={self.password}"

    def psql(self, sql: str, *, db: str | None = None, superuser: bool = True) -> str:
        env = {"PGPASSWORD": self.superuser_password if superuser else self.password, "PATH": "/usr/bin:/bin"}
        proc = subprocess.run(
            [
                "psql",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.superuser if superuser else self.user,
                "-d",
                db or self.dbname,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise ServerError(f"psql failed: {proc.stderr}")
        return proc.stdout.strip()

    def stop(self) -> None:
        self.process.stop(sig=signal.SIGINT)  # fast shutdown


def initdb(data: Path, pwfile: Path) -> None:
    """initdb as the postgres user, like the official image's entrypoint: superuser `postgres` with the password
    in `pwfile`, scram authentication, UTF-8."""
    proc = subprocess.run(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--pwfile", str(pwfile),
         "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
        user="postgres" if os.geteuid() == 0 else None,
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ServerError(f"initdb failed: {proc.stderr}")


@contextlib.contextmanager
def postgres(
    *,
    config: str = "",
    hba: str | None = None,
    init_sql: str | None = None,
    user: str = "langflow",
    dbname: str = "langflow",
    password_: str | None = None,
    start_timeout: float = 60,
) -> Iterator[Postgres]:
    """PostgreSQL 15 on a free loopback port with an application user and database.

    `config` is postgresql.conf text (e.g. rendered); listen address, port and socket directory are appended.
    `hba` replaces pg_hba.conf (rendered); by default password (scram) auth on loopback. `init_sql` runs as
    the superuser after start (psql variables :user, :password and :dbname are not substituted: pass text).
    """
    pw = password_ or password()
    su_pw = password()
    port = free_port()
    with _tempdir("postgres", owner="postgres") as base:
        data = base / "data"
        (base / "pwfile").write_text(su_pw + "\n")
        _chown_tree(base, "postgres")
        initdb(data, base / "pwfile")
        conf_lines = [
            config.rstrip(),
            f"listen_addresses = '{LOOPBACK}'",
            f"port = {port}",
            f"unix_socket_directories = '{base}'",
        ]
        with (data / "postgresql.conf").open("a") as f:
            f.write("\n".join(line for line in conf_lines if line) + "\n")
        if hba is not None:
            (data / "pg_hba.conf").write_text(hba)
        _chown_tree(base, "postgres")
        proc = spawn("postgres", [str(PG_BIN / "postgres"), "-D", str(data)], base / "postgres.log", user="postgres")
        server = Postgres(port, user, pw, dbname, base, proc, superuser_password=su_pw)
        try:
            try:
                wait_for(
                    lambda: proc.ensure_alive() and server.psql("select 1", db="postgres") == "1",
                    start_timeout,
                    "PostgreSQL to accept connections",
                )
            except (TimeoutError, ServerError) as exc:
                raise ServerError(f"{exc}\n--- {proc.log} ---\n{proc.tail()}") from exc
            server.psql(f"create role {user} login password '{pw}'", db="postgres")
            server.psql(f"create database {dbname} owner {user}", db="postgres")
            if init_sql:
                server.psql(init_sql)
            yield server
        finally:
            server.stop()
