"""python -m loadtest.page: reports/load.html, one page viewable offline, and the headline figures in load.json.

Reads what the runs left in --reports (each part is optional; a missing one is named on the page):
- load.json + load-latency.png / load-throughput.png (`python -m loadtest.run`: the platform scenario, targets);
- capacity.json (`python -m loadtest.capacity`: p95 per IDE users step, ours and the baseline, start times);
- throughput.json (`python -m loadtest.throughput`: flows/s of one runtime pod against its slots, IDE sync runs);
- starts.json (`python -m loadtest.starts`: many fresh IDE and runtime pods, Ready seconds and their phases);
- scaling.json + scaling.png (the scaling layer, `make test MARK=scaling`: replicas and queue depth over time).
Plots are PNGs embedded as data URIs; the capacity plot is drawn here from capacity.json. The figures issue 18
names (users_per_core_p95_100ms, baseline.users_per_core_p95_100ms, ide_ready_s, runtime_ready_s from
capacity.json; runtime_flows_per_s_per_pod from throughput.json) are merged into load.json when those files exist;
with starts.json, ide_ready_s and runtime_ready_s are the p95 over its many starts (the p50 beside them).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _read(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _img(data: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _png(fig: Any) -> bytes:
    """A finished matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def capacity_plot(cap: dict[str, Any]) -> bytes:
    """p50/p95 of the IDE requests against users, ours and the baseline, with the target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    for label, color in (("ours", "tab:blue"), ("baseline", "tab:gray")):
        steps = (cap.get(label) or {}).get("steps") or []
        users = [s["users"] for s in steps]
        ax.plot(users, [s["p95_ms"] for s in steps], "o-", color=color, label=f"{label} p95")
        ax.plot(users, [s["p50_ms"] for s in steps], "o:", color=color, alpha=0.6, label=f"{label} p50")
    ax.axhline(cap["target_p95_ms"], color="tab:red", lw=1, ls="--", label=f"target p95 {cap['target_p95_ms']:.0f} ms")
    ax.set_yscale("log")
    ax.set_xlabel("concurrent IDE users (one IDE pod)")
    ax.set_ylabel("latency, ms (log)")
    ax.set_title("IDE API latency against users, real pods on the real node")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def headline(cap: dict[str, Any]) -> dict[str, Any]:
    """The figures issue 18 names, from capacity.json."""
    return {
        "users_per_core_p95_100ms": cap["ours"]["users_per_core_p95_100ms"],
        "baseline_users_per_core_p95_100ms": cap["baseline"]["users_per_core_p95_100ms"],
        "ide_ready_s": cap.get("ide_ready_s"),
        "runtime_ready_s": cap.get("runtime_ready_s"),
        "ide_replicas_for_seed": cap["seed"]["replicas_needed"],
    }


def merge_into_load_json(
    path: Path,
    load: dict[str, Any],
    cap: dict[str, Any] | None,
    thr: dict[str, Any] | None = None,
    starts: dict[str, Any] | None = None,
) -> None:
    if cap is not None:
        h = headline(cap)
        load["users_per_core_p95_100ms"] = h["users_per_core_p95_100ms"]
        load["ide_ready_s"] = h["ide_ready_s"]
        load["runtime_ready_s"] = h["runtime_ready_s"]
        if isinstance(load.get("baseline"), dict):
            load["baseline"]["users_per_core_p95_100ms"] = h["baseline_users_per_core_p95_100ms"]
        load["capacity"] = cap
    if thr is not None:
        for key in ("runtime_flows_per_s_per_pod", "runtime_flows_per_s_per_pod_by_flow", "runtime_pods_for_seed"):
            load[key] = thr[key]
        load["throughput"] = thr
    if starts is not None:
        for label in ("ide", "runtime"):
            if starts[label]["starts"]:
                load[f"{label}_ready_s"] = starts[label]["ready_s_p95"]
                load[f"{label}_ready_s_p50"] = starts[label]["ready_s_p50"]
        if starts["ide"].get("catalogue"):
            load["ide_first_catalogue_over_warm_p95"] = starts["ide"]["catalogue"]["first_over_warm_p95"]
        load["starts"] = starts
    path.write_text(json.dumps(load, indent=2) + "\n")


def throughput_plot(thr: dict[str, Any]) -> bytes:
    """Flows/s against slots (runtime, queued) and against concurrent clients (IDE, synchronous), per flow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.4))
    flows = sorted({r["flow"] for r in thr["rows"]})
    for flow, color in zip(flows, ("tab:blue", "tab:orange", "tab:green", "tab:purple"), strict=False):
        for kind, style in (("runtime", "o-"), ("ide-sync", "s:")):
            rows = sorted((r for r in thr["rows"] if r["kind"] == kind and r["flow"] == flow), key=lambda r: r["slots"])
            ax.plot([r["slots"] for r in rows], [r["flows_per_s"] or 0 for r in rows], style, color=color,
                    label=f"{flow}: {kind}")  # fmt: skip
    ax.set_xlabel("runtime execution slots (worker prefetch) / concurrent IDE clients")
    ax.set_ylabel("flows per second (one pod)")
    ax.set_title("Throughput of one pod against workers")
    ax.set_xticks(sorted({r["slots"] for r in thr["rows"]}))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def _table(head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def build(reports: Path) -> str:
    names = ("load.json", "capacity.json", "scaling.json", "throughput.json", "starts.json")
    load, cap, scaling, thr, starts = (_read(reports / n) for n in names)
    parts = ["<h1>Langflow platform: load report</h1>"]
    machine = (cap or load or {}).get("machine")
    if machine:
        parts.append(f"<p>Machine: {machine['cpus']} CPUs, load average {machine['loadavg_before'][0]:.1f} before, "
                     f"{machine['loadavg_after'][0]:.1f} after.</p>")  # fmt: skip
    parts.append("<h2>Targets</h2>")
    rows: list[list[Any]] = []
    if load:
        rows += [[t["target"], t["ours"], t["baseline"] or "-", {True: "met", False: "MISSED"}.get(t["met"], "-")]
                 for t in load.get("targets", [])]  # fmt: skip
    if cap:
        ours, base = cap["ours"], cap["baseline"]
        rows.append(
            [
                "IDE users per core at p95 < 100 ms",
                ours["users_per_core_p95_100ms"],
                base["users_per_core_p95_100ms"],
                "ours >= baseline: "
                + ("met" if ours["users_per_core_p95_100ms"] >= base["users_per_core_p95_100ms"] else "MISSED"),
            ]
        )
        for key, what in (("ide_ready_s", "IDE pod creation -> Ready"), ("runtime_ready_s", "runtime pod -> Ready")):
            value = cap.get(key)
            rows.append(
                [
                    f"{what} <= 30 s",
                    f"{value} s",
                    base["ready_s"] if key == "ide_ready_s" else "-",
                    "met" if value is not None and value <= 30 else "MISSED",
                ]
            )
        first = ours["catalogue_after_ready"]
        rows.append(["first /api/v1/all on a fresh IDE pod <= 1.5x warm", f"{first.get('first_over_warm')}x",
                     f"{base['catalogue_after_ready'].get('first_over_warm')}x",
                     "met" if (first.get("first_over_warm") or 99) <= 1.5 else "MISSED"])  # fmt: skip
    if starts:
        for label, what in (("ide", "IDE"), ("runtime", "runtime")):
            d = starts[label]
            if d["starts"]:
                rows.append([f"{what} pod creation -> Ready <= {starts['ready_target_s']:.0f} s, p95 of {d['starts']} "
                             f"fresh starts", f"p95 {d['ready_s_p95']} s (p50 {d['ready_s_p50']} s)", "-",
                             "met" if d["ready_s_p95"] <= starts["ready_target_s"] else "MISSED"])  # fmt: skip
        c = starts["ide"].get("catalogue")
        if c:
            rows.append([f"first /api/v1/all on {starts['ide']['starts']} fresh IDE pods, p95 <= "
                         f"{starts['first_over_warm_target']}x the warm p95", f"{c['first_over_warm_p95']}x", "-",
                         "met" if (c["first_over_warm_p95"] or 99) <= starts["first_over_warm_target"]
                         else "MISSED"])  # fmt: skip
    if thr:
        pods = thr["runtime_pods_for_seed"]
        ide = thr["ide_sync_flows_per_s_by_flow"]
        rows.append(["runtime flows/s per pod (work flow, best over slots)", thr["runtime_flows_per_s_per_pod"],
                     f"IDE sync: {ide}", f"seed's {thr['seed_flows_per_s']:.0f} flows/s need {pods} pods"])  # fmt: skip
    parts.append(_table(["target", "ours", "baseline", "verdict"], rows) if rows else "<p>No run found.</p>")

    parts.append("<h2>Capacity: latency against IDE users (one pod each)</h2>")
    if cap:
        parts.append(_img(capacity_plot(cap), "capacity curve"))
        seed = cap["seed"]
        parts.append(f"<p>{seed['seed_ide_users']} IDE users at p95 &lt; 100 ms need {seed['replicas_needed']} IDE "
                     f"pods of {seed['users_per_pod']} users each; the prod profile's HPA allows "
                     f"{seed['hpa_max_replicas']}, which serve {seed['users_at_hpa_max']} users.</p>")  # fmt: skip
        for label in ("ours", "baseline"):
            r = cap[label]
            parts.append(f"<h3>{label}: {r['users_p95_100ms']} users, cpu limit {r['cpu_limit']}, "
                         f"{r['users_per_core_p95_100ms']} users/core</h3>")  # fmt: skip
            parts.append(_table(["users", "requests", "errors", "p50 ms", "p95 ms", "req/s", "cores used"],
                                [[s["users"], s["requests"], s["errors"], s["p50_ms"], s["p95_ms"], s["rps"],
                                  s["cores_used"]] for s in r["steps"]]))  # fmt: skip
    else:
        parts.append(
            "<p>Not measured: run <code>make loadtest</code> on the local cluster (python -m loadtest.capacity).</p>"
        )

    parts.append("<h2>Platform scenario: latency and throughput over time</h2>")
    for png in ("load-latency.png", "load-throughput.png"):
        f = reports / png
        parts.append(_img(f.read_bytes(), png) if f.exists() else f"<p>{png}: not found (python -m loadtest.run).</p>")
    parts.append("<h2>Runtime throughput against workers</h2>")
    if thr:
        parts.append(_img(throughput_plot(thr), "throughput against workers"))
        best = html.escape(json.dumps(thr["runtime_flows_per_s_per_pod_by_flow"]))
        parts.append(f"<p>Best of one runtime pod: {best}"
                     f" flows/s; the seed's {thr['seed_flows_per_s']:.0f} flows/s of the work flow need "
                     f"{thr['runtime_pods_for_seed']} runtime pods on this kind of machine.</p>")  # fmt: skip
        parts.append(_table(["kind", "flow", "slots/clients", "jobs", "errors", "flows/s", "p50 ms", "p95 ms",
                             "cores used"],
                            [[r["kind"], r["flow"], r["slots"], r["jobs"], r["errors"], r["flows_per_s"], r["p50_ms"],
                              r["p95_ms"], r["cores_used"]] for r in thr["rows"]]))  # fmt: skip
    else:
        parts.append("<p>Not measured: run <code>make loadtest</code> on the local cluster "
                     "(python -m loadtest.throughput).</p>")  # fmt: skip
    parts.append("<h2>Pod starts: where the seconds go</h2>")
    if starts:
        for label in ("ide", "runtime"):
            d = starts[label]
            if d["starts"]:
                parts.append(f"<h3>{label}: {d['starts']} fresh pods, Ready p50 {d['ready_s_p50']} s, "
                             f"p95 {d['ready_s_p95']} s</h3>")  # fmt: skip
                parts.append(_table(["phase (median over the starts)", "seconds after creation"],
                                    [[k, v] for k, v in d["phases_s_median"].items()]))  # fmt: skip
    else:
        parts.append("<p>Not measured: run <code>make loadtest</code> on the local cluster "
                     "(python -m loadtest.starts).</p>")  # fmt: skip
    parts.append("<h2>Scaling: replicas and queue depth over time</h2>")
    png = reports / "scaling.png"
    if scaling and png.exists():
        parts.append(_img(png.read_bytes(), "scaling timeline"))
        parts.append(f"<p>{scaling['workload']}: {scaling['min_replicas']} -> {scaling['max_replicas_seen']} -> "
                     f"{scaling['final_replicas']} replicas; {scaling['messages_lost']} of "
                     f"{scaling['messages_published']} jobs lost. {html.escape(scaling['notes'])}</p>")  # fmt: skip
    else:
        parts.append("<p>No scaling run found (make test MARK=scaling writes reports/scaling.json).</p>")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}img{max-width:100%}"
    )
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Langflow platform load report</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.page", description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=Path, default=ROOT / "reports")
    args = p.parse_args(argv)
    names = ("load.json", "capacity.json", "throughput.json", "starts.json")
    load, cap, thr, starts = (_read(args.reports / n) for n in names)
    if load is None and cap is None:
        p.error(f"no load.json or capacity.json in {args.reports}: run python -m loadtest.run / loadtest.capacity")
    if load is not None and (cap is not None or thr is not None or starts is not None):
        merge_into_load_json(args.reports / "load.json", load, cap, thr, starts)
    out = args.reports / "load.html"
    out.write_text(build(args.reports))
    print(f"page: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
