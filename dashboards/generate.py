"""Write the dashboards as JSON and sync the monitoring chart's copies of dashboards and alert rules.

    python -m dashboards.generate                # dashboards/*.json + charts/langflow-monitoring/files/
    python -m dashboards.generate --out DIR      # only the dashboards, into DIR (the drift test uses this)

The chart cannot read files outside its folder, so it ships copies: files/dashboards/*.json and
files/alerts/*.rules.yaml. This command is the one sync step; tests fail when the copies drift.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from . import keda, kubernetes_workloads, langflow_overview, postgresql, rabbitmq

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS_DIR = ROOT / "dashboards"
CHART_FILES = ROOT / "charts" / "langflow-monitoring" / "files"
BUILDERS: tuple[Callable[[], Dashboard], ...] = (
    langflow_overview.build,
    kubernetes_workloads.build,
    postgresql.build,
    rabbitmq.build,
    keda.build,
)


def render() -> dict[str, str]:
    """file name -> JSON text of every dashboard."""
    out: dict[str, str] = {}
    for build in BUILDERS:
        model = build().build()
        data = json.loads(json.dumps(model, cls=JSONEncoder))
        next_id = 1
        for panel in data.get("panels", []):  # stable, unique panel ids
            panel["id"] = next_id
            next_id += 1
        out[f"{data['uid']}.json"] = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return out


def write(out_dir: Path, files: dict[str, str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    for name, text in files.items():
        (out_dir / name).write_text(text)


def sync_chart(files: dict[str, str]) -> None:
    write(CHART_FILES / "dashboards", files)
    alerts = CHART_FILES / "alerts"
    alerts.mkdir(parents=True, exist_ok=True)
    sources = sorted((ROOT / "alerts").glob("*.rules.yaml"))
    for stale in alerts.glob("*.rules.yaml"):
        if stale.name not in {s.name for s in sources}:
            stale.unlink()
    for src in sources:
        shutil.copyfile(src, alerts / src.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write only the dashboards, into this directory")
    args = parser.parse_args(argv)
    files = render()
    if args.out:
        write(args.out, files)
    else:
        write(DASHBOARDS_DIR, files)
        sync_chart(files)
    print(f"wrote {len(files)} dashboards: {', '.join(sorted(files))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
