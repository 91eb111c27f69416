"""End to end: the platform's rules in a real Prometheus scraping a real RabbitMQ fire the runtime backlog
alert, and a real Alertmanager running the chart's rendered routing delivers it to a webhook receiver; the
RabbitMQ dashboard's queries then run on that Prometheus and draw data (Grafana itself cannot be built here).

Real: RabbitMQ 3.10 (prometheus plugin, aggregated and per-queue endpoints), Prometheus 2.42, Alertmanager 0.25
(Debian), the rule files and alertmanager.yml rendered by the monitoring chart (dev profile, bundled mode).
Stand-ins, said here: kube-state-metrics cannot run without a cluster, so a small HTTP endpoint serves the two
HPA series the rule joins on (the runtime's KEDA HPA at its maximum, 10 of 10); the scrape labels the
PodMonitors add in a cluster (namespace, pod, component, exporter) are set as static target labels; and the
test copy of the rules shortens this one alert's `for: 10m` to 5 s (nothing else is changed).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
import yaml

from tests.harness import helm, servers
from tests.harness import metrics_catalogue as mc
from tests.harness.paths import ROOT, tool

pytestmark = pytest.mark.alerts

ALERT = "LangflowRuntimeQueueBacklog"
QUEUE = "langflow.jobs"
NAMESPACE = "langflow"
KSM_SERIES = (
    f'kube_horizontalpodautoscaler_status_current_replicas{{namespace="{NAMESPACE}",'
    'horizontalpodautoscaler="keda-hpa-lf-runtime"} 10\n'
    f'kube_horizontalpodautoscaler_spec_max_replicas{{namespace="{NAMESPACE}",'
    'horizontalpodautoscaler="keda-hpa-lf-runtime"} 10\n'
)


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer((servers.LOOPBACK, servers.free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class KubeStateMetricsStandIn(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = KSM_SERIES.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class WebhookReceiver(BaseHTTPRequestHandler):
    """Collects Alertmanager's webhook notifications in server.received (a list of JSON payloads)."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.received.append(json.loads(self.rfile.read(length)))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def rendered(webhook_url: str) -> tuple[dict[str, str], str]:
    """The dev profile's bundled rule files and alertmanager.yml, webhook receiver on, short grouping."""
    m = helm.render_profile(
        "dev",
        set_values={
            "monitoring.alertmanager.receivers.webhook.enabled": True,
            "monitoring.alertmanager.receivers.webhook.url": webhook_url,
            "monitoring.alertmanager.route.groupWait": "1s",
            "monitoring.alertmanager.route.groupInterval": "5s",
        },
    )
    rules = m.get("ConfigMap", "lf-monitoring-prometheus-rules")["data"]
    return rules, m.get("ConfigMap", "lf-monitoring-alertmanager")["data"]["alertmanager.yml"]


def shorten_for(rules: dict[str, str], alert: str, for_: str) -> dict[str, str]:
    out = {}
    found = False
    for name, text in rules.items():
        doc = yaml.safe_load(text)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    rule["for"] = for_
                    found = True
        out[name] = yaml.safe_dump(doc, sort_keys=False)
    assert found, f"{alert} not in the rendered rules"
    return out


def prometheus_config(base: Path, rabbit: servers.RabbitMQ, ksm_port: int, am_port: int) -> str:
    target_labels = {"namespace": NAMESPACE, "pod": "lf-broker-0", "component": "broker", "exporter": "rabbitmq"}
    rabbit_target = f"{servers.LOOPBACK}:{rabbit.prometheus_port}"
    conf = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(base / "rules" / "*.rules.yaml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{servers.LOOPBACK}:{am_port}"]}]}]},
        "scrape_configs": [
            {"job_name": "rabbitmq", "static_configs": [{"targets": [rabbit_target], "labels": target_labels}]},
            {
                "job_name": "rabbitmq-detailed",
                "metrics_path": "/metrics/detailed",
                "params": {"family": ["queue_coarse_metrics", "queue_consumer_count"]},
                "static_configs": [{"targets": [rabbit_target], "labels": target_labels}],
            },
            {
                "job_name": "kube-state-metrics",
                "honor_labels": True,
                "static_configs": [{"targets": [f"{servers.LOOPBACK}:{ksm_port}"]}],
            },
        ],
    }
    return yaml.safe_dump(conf)


# A single node has no cluster peers: the only RabbitMQ dashboard query expected to come back empty here.
RABBITMQ_PANELS_EMPTY_ON_ONE_NODE = {"Cluster links"}


def dashboard_queries_without_data(port: int, dashboard: Path) -> set[str]:
    """Run every query of a dashboard against Prometheus (as Grafana would, variables substituted); each must
    succeed; returns the titles of panels whose queries all returned no series."""
    empty = set()
    for panel in json.loads(dashboard.read_text())["panels"]:
        results = []
        for target in panel.get("targets", []):
            q = mc.grafana_to_promql(target["expr"], {"namespace": NAMESPACE})
            r = requests.get(f"http://{servers.LOOPBACK}:{port}/api/v1/query", params={"query": q}, timeout=10)
            assert r.ok and r.json()["status"] == "success", f"{panel['title']}: {q}: {r.text[:300]}"
            results += r.json()["data"]["result"]
        if panel.get("targets") and not results:
            empty.add(panel["title"])
    return empty


def alerts_in_prometheus(port: int) -> list[dict[str, Any]]:
    r = requests.get(f"http://{servers.LOOPBACK}:{port}/api/v1/alerts", timeout=5)
    r.raise_for_status()
    return r.json()["data"]["alerts"]


def firing(port: int, name: str) -> list[dict[str, Any]]:
    return [a for a in alerts_in_prometheus(port) if a["labels"]["alertname"] == name and a["state"] == "firing"]


@pytest.mark.timeout(240)
def test_backlog_alert_reaches_the_webhook_through_rendered_routing(tmp_path: Path) -> None:
    t0 = time.monotonic()
    timeline: dict[str, float] = {}
    # queue statistics every second instead of every 5 s, so the test needs seconds, not minutes
    with (
        servers.rabbitmq(config="collect_statistics_interval = 1000") as rabbit,
        http_server(KubeStateMetricsStandIn) as ksm,
        http_server(WebhookReceiver) as hook,
    ):
        hook.received = []  # type: ignore[attr-defined]
        timeline["rabbitmq_up_s"] = time.monotonic() - t0
        webhook_url = f"http://{servers.LOOPBACK}:{hook.server_port}/alerts"
        rules, am_config = rendered(webhook_url)
        (tmp_path / "rules").mkdir()
        for name, text in shorten_for(rules, ALERT, "5s").items():
            (tmp_path / "rules" / name).write_text(text)
        (tmp_path / "alertmanager.yml").write_text(am_config)
        am_port, prom_port = servers.free_port(), servers.free_port()
        (tmp_path / "prometheus.yml").write_text(prometheus_config(tmp_path, rabbit, ksm.server_port, am_port))

        alertmanager = servers.spawn(
            "alertmanager",
            [
                tool("prometheus-alertmanager"),
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address={servers.LOOPBACK}:{am_port}",
                "--cluster.listen-address=",
            ],
            tmp_path / "alertmanager.log",
        )
        prometheus = servers.spawn(
            "prometheus",
            [
                tool("prometheus"),
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address={servers.LOOPBACK}:{prom_port}",
            ],
            tmp_path / "prometheus.log",
        )
        conn = pika.BlockingConnection(pika.URLParameters(rabbit.url))
        try:
            servers.wait_for(
                lambda: (
                    alertmanager.ensure_alive()
                    and requests.get(f"http://{servers.LOOPBACK}:{am_port}/-/ready", timeout=2).ok
                ),
                30,
                "Alertmanager ready",
            )
            servers.wait_for(
                lambda: (
                    prometheus.ensure_alive()
                    and requests.get(f"http://{servers.LOOPBACK}:{prom_port}/-/ready", timeout=2).ok
                ),
                30,
                "Prometheus ready",
            )
            groups = requests.get(f"http://{servers.LOOPBACK}:{prom_port}/api/v1/rules", timeout=5).json()
            loaded = {r["name"] for g in groups["data"]["groups"] for r in g["rules"] if r["type"] == "alerting"}
            assert ALERT in loaded and len(loaded) >= 20, loaded

            ch = conn.channel()
            ch.queue_declare(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
            # a consumer keeps up at first: the queue stays empty and nothing fires
            consumed: list[bytes] = []
            tag = ch.basic_consume(QUEUE, lambda c, m, p, body: (consumed.append(body), c.basic_ack(m.delivery_tag)))
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                ch.basic_publish("", QUEUE, b'{"flow": "echo"}')
                conn.process_data_events(time_limit=0.5)
            assert consumed, "the consumer received nothing"
            assert not firing(prom_port, ALERT), "fired while the consumer kept up"
            # the consumer stops; jobs keep arriving: the queue grows while the runtime is at max replicas
            ch.basic_cancel(tag)
            timeline["consumer_stopped_s"] = time.monotonic() - t0

            def publish_and_check() -> list[dict[str, Any]]:
                for _ in range(5):
                    ch.basic_publish("", QUEUE, b'{"flow": "echo"}')
                conn.process_data_events(time_limit=0)
                return firing(prom_port, ALERT)

            fired = servers.wait_for(publish_and_check, 90, f"{ALERT} firing in Prometheus", interval=1)
            timeline["firing_in_prometheus_s"] = time.monotonic() - t0
            assert fired[0]["labels"] | {"queue": QUEUE} == fired[0]["labels"]
            assert fired[0]["labels"]["namespace"] == NAMESPACE and fired[0]["labels"]["severity"] == "critical"

            def delivered() -> list[dict[str, Any]]:
                return [
                    a
                    for payload in hook.received  # type: ignore[attr-defined]
                    for a in payload["alerts"]
                    if payload["receiver"] == "webhook"
                    and a["labels"]["alertname"] == ALERT
                    and a["status"] == "firing"
                ]

            got = servers.wait_for(delivered, 60, f"{ALERT} delivered to the webhook receiver", interval=0.5)
            timeline["delivered_to_webhook_s"] = time.monotonic() - t0
            alert = got[0]
            assert alert["labels"]["queue"] == QUEUE
            assert alert["annotations"]["runbook_url"].endswith("#langflowruntimequeuebacklog")
            assert "keeps growing" in alert["annotations"]["description"]
            # nothing else is wrong with this broker: node, alarms and partition alerts stay silent
            others = {a["labels"]["alertname"] for a in alerts_in_prometheus(prom_port) if a["state"] == "firing"}
            assert others == {ALERT}, others
            # the RabbitMQ dashboard's queries run on this Prometheus and draw data
            empty = dashboard_queries_without_data(prom_port, ROOT / "dashboards" / "langflow-rabbitmq.json")
            timeline["dashboard_checked_s"] = time.monotonic() - t0
            assert empty == RABBITMQ_PANELS_EMPTY_ON_ONE_NODE, empty
        except Exception:
            print(f"--- prometheus.log ---\n{prometheus.tail()}\n--- alertmanager.log ---\n{alertmanager.tail()}")
            raise
        finally:
            with contextlib.suppress(Exception):
                conn.close()
            prometheus.stop(grace=10)
            alertmanager.stop(grace=10)
            print(f"timeline (s since start): {json.dumps({k: round(v, 1) for k, v in timeline.items()})}")
