"""load: a short Locust run against real Langflow processes started the way the chart's pods run them.

One run (module fixture) of `loadtest.run` against a local installation: ours (IDE Deployment + runtime
StatefulSet Langflow containers + the runtime's worker, on real PostgreSQL and RabbitMQ, env and mounts from
the rendered dev profile, under bubblewrap) and the baseline (Langflow's defaults). The tests check the report
a person reads: it exists, its numbers agree with Locust's own statistics and with the raw samples, flows
really ran at (about) the offered rate, the error rate is below 1 %, queued jobs came back through the worker,
and the HTML and plots were written. A separate test proves the harness enforces the pod's writable mounts.
Timing targets (p95s) are reported, not asserted: this machine is shared and small.
"""

from __future__ import annotations

import copy
import csv
import json
from typing import Any

import pytest

from loadtest import page, run
from loadtest.report import Samples
from tests.harness import helm
from tests.harness.langflow import LangflowError, find_container, find_workload, langflow_process
from tests.harness.paths import REPORTS

pytestmark = pytest.mark.load

# short run: 10 IDE users and 1 flow/s (seed / 100), 20 s per system, 10 s of queued runs
ARGS = ["--duration", "20", "--queue-duration", "10", "--scale", "100", "--think", "1", "3"]
KEYS = ("runtime_p95_ms", "ide_p95_ms", "flows_per_s", "error_rate", "requests", "users")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    REPORTS.mkdir(parents=True, exist_ok=True)
    assert run.main([*ARGS, "--out", str(REPORTS)]) == 0
    return json.loads((REPORTS / "load.json").read_text())


def _locust_total(name: str) -> int:
    with (REPORTS / f"load-{name}_stats.csv").open() as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    return int(rows["Aggregated"]["Request Count"])


@pytest.mark.timeout(900)
def test_report_has_every_figure_for_ours_and_baseline(report: dict[str, Any]) -> None:
    for key in KEYS:
        assert isinstance(report[key], int | float), f"load.json: {key} = {report[key]!r}"
        assert isinstance(report["baseline"][key], int | float), f"load.json baseline: {key} missing"
    for fig in (report, report["baseline"]):
        assert fig["requests"] > 0 and fig["users"] > 0
        assert 0 < fig["ide_p95_ms"] < 60_000 and 0 < fig["runtime_p95_ms"] < 60_000
    assert {t["target"].split(" ")[0] for t in report["targets"]} >= {"runtime", "IDE", "error", "ours"}


@pytest.mark.timeout(900)
def test_numbers_agree_with_locust_and_samples(report: dict[str, Any]) -> None:
    for name, fig in (("ours", report), ("baseline", report["baseline"])):
        # Locust writes its stats before the users' last in-flight requests end; the samples include them
        locust_total = _locust_total(name)
        assert locust_total <= fig["requests"] <= locust_total + fig["users"], (
            f"{name}: load.json has {fig['requests']} requests, Locust's stats {locust_total}"
        )
        samples = Samples.load(REPORTS / f"load-{name}.samples.jsonl")
        runs = sorted(r["ms"] for r in samples.of("runtime:"))
        assert runs, f"{name}: no runtime requests recorded"
        assert runs[0] <= fig["runtime_p95_ms"] <= runs[-1]
        assert max(u for _, u in samples.users) == fig["users"]


@pytest.mark.timeout(900)
def test_flows_ran_at_the_offered_rate(report: dict[str, Any]) -> None:
    load = report["details"]["ours"]["load"]
    for name, fig in (("ours", report), ("baseline", report["baseline"])):
        assert fig["flows_per_s"] >= 0.5 * load["runtime_rate"], (
            f"{name}: {fig['flows_per_s']} flows/s against {load['runtime_rate']} offered"
        )


@pytest.mark.timeout(900)
def test_error_rate_below_one_percent(report: dict[str, Any]) -> None:
    for name, fig in (("ours", report), ("baseline", report["baseline"])):
        failing = {k: v for k, v in report["details"][name]["endpoints"].items() if v["failures"]}
        assert fig["error_rate"] < 0.01, f"{name}: error rate {fig['error_rate']:.2%}; failing: {failing}"


@pytest.mark.timeout(900)
def test_queued_runs_come_back_through_the_worker(report: dict[str, Any]) -> None:
    q = report["queue"]
    assert q is not None, "no queued scenario ran (no worker container or broker in the rendered runtime)"
    assert q["requests"] > 0 and q["error_rate"] < 0.01, q["endpoints"]
    assert q["queue_p95_ms"] > 0 and q["flows_per_s"] > 0


@pytest.mark.timeout(900)
def test_html_and_plots_written(report: dict[str, Any]) -> None:
    for name in ("ours", "baseline"):
        html = (REPORTS / f"load-{name}.html").read_text()
        assert "locust" in html.lower() and "runtime:run" in html
    for png in ("load-latency.png", "load-throughput.png"):
        data = (REPORTS / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png


@pytest.mark.timeout(300)
def test_pod_without_writable_tmp_fails_to_start() -> None:
    """The harness runs Langflow on a read-only root: the IDE pod without its /tmp emptyDir must not start.
    The database is pointed at SQLite in the pod's writable /app/data so that /tmp is the only thing missing."""
    manifest = helm.render_profile("dev")
    broken = copy.deepcopy(manifest.objects)
    container = find_container(find_workload(helm.Manifest(broken), "ide"))
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["mountPath"] != "/tmp"]
    assert any(m["mountPath"] == "/app/data" for m in container["volumeMounts"]), "the IDE lost its data mount"
    sqlite = {"LANGFLOW_DATABASE_URL": "sqlite:////app/data/harness.db"}
    with pytest.raises(LangflowError) as err:  # noqa: SIM117
        with langflow_process(helm.Manifest(broken, "dev without /tmp"), "ide", overrides=sqlite, startup_timeout=240):
            pass
    message = str(err.value)
    assert "exited" in message, message[-3000:]
    assert "Read-only file system" in message or "No usable temporary directory" in message, message[-3000:]


@pytest.mark.timeout(300)
def test_page_shows_every_target_and_the_plots(report: dict[str, Any]) -> None:
    """reports/load.html from this run: one self-contained page with each target of load.json and its plots."""
    assert page.main(["--reports", str(REPORTS)]) == 0
    text = (REPORTS / "load.html").read_text()
    import html

    for t in report["targets"]:
        assert html.escape(t["target"]) in text and html.escape(str(t["ours"])) in text, t
    assert text.count("data:image/png;base64,") >= 2, "the scenario's plots are not embedded"
    assert 'src="http' not in text and 'href="http' not in text, "the page must not load anything from the network"
