"""A catalogue of the metric names (and their labels) that the platform's rules and dashboards may use.

Where a real exporter runs on this machine the catalogue is built from its live output:
- RabbitMQ 3.10 (Debian) with the prometheus plugin: /metrics, /metrics/detailed (queue families) and, while a
  CLI tool is connected, the Erlang distribution families a cluster shows;
- prometheus-postgres-exporter against a real PostgreSQL 15;
- prometheus-redis-exporter against a real Redis 7;
- the runtime's queue worker (worker/, our code): its Metrics class rendered by prometheus_client.
From real source code of the pinned versions (modules the toolchain downloads):
- CloudNativePG v1.27 instance exporter (cnpg_*): its default-monitoring.yaml queries and collector source;
- KEDA v2.20.2: the committed, cited alerts/catalogue/keda.txt, checked against prommetrics.go.
- Langflow 1.13 itself (tests/harness/langflow.py's baseline process with its Prometheus port on).
From committed, cited data files (alerts/catalogue/*.txt): kube-state-metrics, kubelet/cAdvisor, Qdrant, and
Langflow 1.13's names as first scraped (kept as a record; the test checks it against the live scrape).

`selectors(promql)` extracts (metric, label names) from every vector selector of an expression with a small
tokenizer (functions, aggregations, grouping clauses, strings, durations and Grafana variables are skipped).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from . import langflow, servers
from .paths import ROOT

CATALOGUE_DIR = ROOT / "alerts" / "catalogue"
ALERTS_DIR = ROOT / "alerts"
VERSIONS = ROOT / "tools" / "versions.env"

# Labels every scraped series carries: Prometheus' target labels plus those our ServiceMonitors/PodMonitors
# add (component, exporter) and Prometheus Operator's defaults (namespace, pod, service, container, endpoint).
TARGET_LABELS = frozenset(
    {"job", "instance", "namespace", "pod", "service", "container", "endpoint", "component", "exporter"}
)
# Series Prometheus makes itself for every target or alert.
PROMETHEUS_SERIES: dict[str, frozenset[str]] = {
    "up": frozenset(),
    "scrape_duration_seconds": frozenset(),
    "scrape_samples_scraped": frozenset(),
    "ALERTS": frozenset({"alertname", "alertstate", "severity"}),
}


@dataclass
class Catalogue:
    """metric name -> label names (None: labels not documented, only the name is checked) and its source."""

    metrics: dict[str, frozenset[str] | None] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def add(self, source: str, metrics: dict[str, frozenset[str] | None]) -> None:
        for name, labels in metrics.items():
            old = self.metrics.get(name, frozenset())
            self.metrics[name] = None if labels is None or old is None else old | labels
            self.sources.setdefault(name, source)

    def problems(self, expr: str) -> list[str]:
        """What an expression uses that the catalogue does not know (empty when everything is known)."""
        out: list[str] = []
        for sel in selectors(expr):
            if sel.metric not in self.metrics:
                out.append(f"unknown metric {sel.metric!r}")
                continue
            known = self.metrics[sel.metric]
            if known is None:
                continue
            for label in sel.labels:
                if label not in known and label not in TARGET_LABELS and label != "__name__":
                    out.append(f"unknown label {label!r} on {sel.metric} (known: {sorted(known)})")
        return out

    def to_json(self) -> str:
        return json.dumps(
            {k: (sorted(v) if v is not None else None, self.sources[k]) for k, v in sorted(self.metrics.items())}
        )

    @classmethod
    def from_json(cls, text: str) -> Catalogue:
        c = cls()
        for name, (labels, source) in json.loads(text).items():
            c.metrics[name] = None if labels is None else frozenset(labels)
            c.sources[name] = source
        return c


# ------------------------------------------------------------------------------------------- parsing
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="')


def parse_exposition(text: str) -> dict[str, frozenset[str] | None]:
    """Metric names and label names from Prometheus text exposition format."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        found.setdefault(m.group(1), set()).update(_LABEL.findall(m.group(2) or ""))
    return {k: frozenset(v) for k, v in found.items()}


def load_data_file(path: Path) -> dict[str, frozenset[str] | None]:
    """A committed catalogue file: `name label...` per line, `#` comments, a lone `-` for undocumented labels."""
    out: dict[str, frozenset[str] | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, *labels = line.split()
        out[name] = None if labels == ["-"] else frozenset(labels)
    return out


def data_file_header(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))


def pinned(name: str) -> str:
    for line in VERSIONS.read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip().strip('"')
    raise KeyError(f"{name} not pinned in {VERSIONS}")


def module_dir(module: str, version: str) -> Path:
    """A Go module the toolchain downloaded (tools/install.sh keeps copies under ~/.cache/langflow-platform/src)."""
    import os

    cache = Path(
        os.environ.get("LFP_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "langflow-platform"
    )
    candidates = [cache / "src" / f"{module.replace('/', '_')}@{version}"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        gomodcache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        if gomodcache:
            candidates.append(Path(gomodcache) / f"{module}@{version}")
    for c in candidates:
        if (c / "go.mod").exists():
            return c
    raise FileNotFoundError(f"Go module {module}@{version} not found in {candidates}: run `make tools`")


def cnpg_metrics(module: Path) -> dict[str, frozenset[str] | None]:
    """cnpg_* metrics of a CloudNativePG instance: the default monitoring queries and the collector's own."""
    out: dict[str, frozenset[str] | None] = {}
    cm = yaml.safe_load((module / "config" / "manager" / "default-monitoring.yaml").read_text())
    queries = yaml.safe_load(cm["data"]["queries"])
    for query, spec in queries.items():
        columns = [next(iter(m.items())) for m in spec["metrics"]]
        labels = frozenset(c for c, d in columns if d["usage"] == "LABEL")
        for column, d in columns:
            if d["usage"] in ("GAUGE", "COUNTER"):
                out[f"cnpg_{query}_{column}"] = labels
            elif d["usage"] == "HISTOGRAM":
                for suffix in ("_bucket", "_sum", "_count"):
                    out[f"cnpg_{query}_{column}{suffix}"] = labels | ({"le"} if suffix == "_bucket" else set())
    source = (module / "pkg/management/postgres/webserver/metricserver/pg_collector.go").read_text()
    for block in re.finditer(r"Subsystem:\s*(\w+),\s*Name:\s*\"(\w+)\"", source):
        subsystem = {"subsystem": "collector"}.get(block.group(1), block.group(1).strip('"'))
        out[f"cnpg_{subsystem}_{block.group(2)}"] = None
    return out


def keda_source_names(module: Path) -> set[str]:
    """Operator metric names defined in KEDA's prommetrics.go (namespace keda, subsystem + name)."""
    text = (module / "pkg" / "metricscollector" / "prommetrics.go").read_text()
    names = set()
    for m in re.finditer(
        r"Namespace:\s*DefaultPromMetricsNamespace,\s*(?:Subsystem:\s*\"(\w+)\",\s*)?Name:\s*\"(\w+)\"", text
    ):
        names.add("_".join(p for p in ("keda", m.group(1), m.group(2)) if p))
    return names


def recording_rules(files: Iterable[Path]) -> dict[str, frozenset[str] | None]:
    out: dict[str, frozenset[str] | None] = {}
    for f in files:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    out[rule["record"]] = None
    return out


# ------------------------------------------------------------------------------------------ PromQL
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "atan2",
        "start",
        "end",
    }
)
_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
_TOKEN = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)|(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""
    r"""|(?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:ms|s|m|h|d|w|y)?(?:\d+(?:ms|s|m|h|d|w|y))*)"""
    r"""|(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"""
    r"""|(?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])"""
)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[str, ...]


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize PromQL at {pos}: {expr[pos : pos + 30]!r} in {expr!r}")
        kind = m.lastgroup or ""
        if kind not in ("ws", "comment"):
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


def _skip_group(tokens: list[tuple[str, str]], i: int, open_: str, close: str) -> int:
    """Index just past the bracket group that starts at tokens[i] (which is `open_`)."""
    depth = 0
    while i < len(tokens):
        if tokens[i] == ("op", open_):
            depth += 1
        elif tokens[i] == ("op", close):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_}{close}")


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of a PromQL expression: its metric name and the label names it matches on."""
    tokens = tokenize(expr)
    out: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "op" and text == "[":  # range or subquery: durations and variables only
            i = _skip_group(tokens, i, "[", "]")
            continue
        if kind == "ident" and text in ("by", "without", "on", "ignoring", "group_left", "group_right"):
            i += 1
            if i < len(tokens) and tokens[i] == ("op", "("):
                i = _skip_group(tokens, i, "(", ")")
            continue
        if kind == "ident" and text.lower() in _KEYWORDS:
            i += 1
            continue
        if kind == "ident" and (nxt == ("op", "(") or text in _AGGREGATIONS):  # a function or an aggregation
            i += 1
            continue
        if kind == "ident" or (kind == "op" and text == "{"):
            metric = text if kind == "ident" else ""
            labels: list[str] = []
            j = i + 1 if kind == "ident" else i
            if j < len(tokens) and tokens[j] == ("op", "{"):
                end = _skip_group(tokens, j, "{", "}")
                inner = tokens[j + 1 : end - 1]
                for k, (ik, itext) in enumerate(inner):
                    if (
                        ik == "ident"
                        and k + 1 < len(inner)
                        and inner[k + 1][0] == "op"
                        and inner[k + 1][1] in ("=", "!=", "=~", "!~")
                    ):
                        if itext == "__name__" and k + 2 < len(inner) and inner[k + 1][1] == "=":
                            metric = inner[k + 2][1].strip("\"'`")
                        else:
                            labels.append(itext)
                j = end
            if metric:
                out.append(Selector(metric, tuple(labels)))
            i = j
            continue
        i += 1
    return out


def grafana_to_promql(expr: str, variables: dict[str, str] | None = None) -> str:
    """A dashboard query with Grafana's variables replaced ($__rate_interval -> 1m, others from `variables`,
    else `.*`), ready for Prometheus."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s").replace("$__range", "1h")
    values = variables or {}
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", lambda m: values.get(m.group(1), ".*"), expr)


# ------------------------------------------------------------------------------------ live exporters
def _get(url: str) -> str:
    r = requests.get(url, timeout=10)
    r.raise_for_status()
    return r.text


def _get_if(url: str, needle: str) -> str:
    """The page when it contains `needle`, else "" (for wait_for)."""
    text = _get(url)
    return text if needle in text else ""


@contextlib.contextmanager
def _exporter(cmd: list[str], env: dict[str, str] | None, port: int, base: Path, name: str) -> Iterator[str]:
    proc = servers.spawn(name, cmd, base / f"{name}.log", env=env)
    try:
        url = f"http://{servers.LOOPBACK}:{port}/metrics"
        servers.wait_for(lambda: proc.ensure_alive() and _get(url), 30, f"{name} to serve /metrics")
        yield url
    finally:
        proc.stop(grace=10)


def scrape_rabbitmq(base: Path) -> dict[str, frozenset[str] | None]:
    """RabbitMQ's own metrics with a quorum queue holding messages, per-queue detailed families, and the
    Erlang distribution families (a connected CLI tool stands in for a peer node)."""
    import pika

    found: dict[str, frozenset[str] | None] = {}
    with servers.rabbitmq() as node:
        conn = pika.BlockingConnection(pika.URLParameters(node.url))
        try:
            ch = conn.channel()
            ch.queue_declare("catalogue.jobs", durable=True, arguments={"x-queue-type": "quorum"})
            for _ in range(3):
                ch.basic_publish("", "catalogue.jobs", b"{}")
            ch.basic_qos(prefetch_count=1)
            ch.basic_get("catalogue.jobs", auto_ack=False)  # one unacked message
            detailed = node.metrics_url.replace("/metrics", "/metrics/detailed")
            detailed += "?family=queue_coarse_metrics&family=queue_consumer_count"
            servers.wait_for(lambda: 'queue="catalogue.jobs"' in _get(detailed), 60, "per-queue metrics")
            holder = threading.Thread(target=lambda: node.ctl("eval", "timer:sleep(6000)."), daemon=True)
            holder.start()
            linked = servers.wait_for(
                lambda: _get_if(node.metrics_url, "erlang_vm_dist_node_state{"),
                30,
                "a distribution link in the metrics",
            )
            found.update(parse_exposition(linked))
            found.update(parse_exposition(_get(detailed)))
            holder.join(timeout=30)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
    return found


def scrape_postgres_exporter(base: Path) -> dict[str, frozenset[str] | None]:
    with servers.postgres() as pg:
        port = servers.free_port()
        env = {
            "DATA_SOURCE_NAME": f"postgresql://postgres:{pg.superuser_password}@{pg.host}:{pg.port}/postgres?sslmode=disable",
            "PATH": "/usr/bin:/bin",
        }
        cmd = ["prometheus-postgres-exporter", f"--web.listen-address={servers.LOOPBACK}:{port}"]
        with _exporter(cmd, env, port, base, "postgres-exporter") as url:
            servers.wait_for(lambda: "pg_up 1" in _get(url), 30, "postgres_exporter to reach PostgreSQL")
            return parse_exposition(_get(url))


def scrape_redis_exporter(base: Path) -> dict[str, frozenset[str] | None]:
    with servers.redis() as rd:
        port = servers.free_port()
        cmd = [
            "prometheus-redis-exporter",
            f"-web.listen-address={servers.LOOPBACK}:{port}",
            f"-redis.addr=redis://{rd.host}:{rd.port}",
        ]
        env = {"REDIS_PASSWORD": rd.password or "", "PATH": "/usr/bin:/bin"}
        with _exporter(cmd, env, port, base, "redis-exporter") as url:
            servers.wait_for(lambda: "redis_up 1" in _get(url), 30, "redis_exporter to reach Redis")
            return parse_exposition(_get(url))


def worker_metrics() -> dict[str, frozenset[str] | None]:
    """The runtime queue worker's metrics as its own code exposes them: every metric of its Metrics class is
    given a sample (labelled ones one child each), then rendered by prometheus_client like its /metrics."""
    from langflow_worker.metrics import Metrics
    from prometheus_client import generate_latest
    from prometheus_client.metrics import MetricWrapperBase

    m = Metrics()
    for metric in vars(m).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        names = getattr(metric, "_labelnames", ())
        child = metric.labels(*["x"] * len(names)) if names else metric
        for method, arg in (("inc", 1), ("observe", 0.1), ("set", 1)):
            if hasattr(child, method):
                getattr(child, method)(arg)
                break
    return parse_exposition(generate_latest(m.registry).decode())


LANGFLOW_SOURCE = "langflow 1.13 (scraped)"


def scrape_langflow(lf: langflow.LangflowProcess) -> dict[str, frozenset[str] | None]:
    """A real Langflow's /metrics after a few requests (health probes, an API call with and without a token,
    a 404), so the per-request families exist."""
    lf.wait_healthy(timeout=300)
    for path in ("/health", "/health_check", "/api/v1/version", "/api/v1/flows/", "/no-such-route"):
        requests.get(f"{lf.base_url}{path}", timeout=30)
    requests.get(f"{lf.base_url}/api/v1/flows/", headers=lf.headers(), timeout=30)
    assert lf.metrics_url, "Langflow runs without its Prometheus port"
    text = servers.wait_for(
        lambda: _get_if(lf.metrics_url or "", "http_server_request_duration_seconds_bucket{"), 30, "Langflow metrics"
    )
    return parse_exposition(text)


def build(base: Path) -> Catalogue:
    """The whole catalogue: starts Langflow, RabbitMQ, PostgreSQL, Redis and two exporters; about a minute."""
    c = Catalogue()
    c.add("prometheus", dict(PROMETHEUS_SERIES))

    # Langflow (about a minute to start) is scraped beside the other servers, which start one after the other:
    # servers.free_port hands out ports outside the ephemeral range, so no connection can take Langflow's port
    # before it binds it.
    def scrape_real_langflow() -> dict[str, frozenset[str] | None]:
        with langflow.baseline_process(overrides={"LANGFLOW_PROMETHEUS_ENABLED": "true"}, startup_timeout=300) as lf:
            return scrape_langflow(lf)

    with ThreadPoolExecutor(max_workers=1) as pool:
        langflow_series = pool.submit(scrape_real_langflow)
        others = [
            ("rabbitmq-server 3.10 (scraped)", scrape_rabbitmq(base)),
            ("prometheus-postgres-exporter (scraped)", scrape_postgres_exporter(base)),
            ("prometheus-redis-exporter (scraped)", scrape_redis_exporter(base)),
        ]
        # Langflow first: a family several servers expose (process_*) is recorded under the first source
        c.add(LANGFLOW_SOURCE, langflow_series.result(timeout=420))
    for source, series in others:
        c.add(source, series)
    c.add("langflow_worker (its exposition)", worker_metrics())
    c.add(
        "cloudnative-pg module source",
        cnpg_metrics(module_dir("github.com/cloudnative-pg/cloudnative-pg", pinned("CNPG_VERSION"))),
    )
    for f in sorted(CATALOGUE_DIR.glob("*.txt")):
        c.add(f"alerts/catalogue/{f.name}", load_data_file(f))
    c.add("alerts/recording.rules.yaml", recording_rules(sorted(ALERTS_DIR.glob("*.rules.yaml"))))
    return c


def cached(base: Path) -> Catalogue:
    """build() once per pytest session: the result is kept as JSON in the session's temporary directory."""
    path = base / "metrics-catalogue.json"
    if path.exists():
        return Catalogue.from_json(path.read_text())
    work = base / "catalogue-servers"
    work.mkdir(parents=True, exist_ok=True)
    c = build(work)
    path.write_text(c.to_json())
    return c
