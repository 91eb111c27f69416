"""Download the runtime's flows from URLs before Langflow starts (the `fetch-flows` initContainer).

Each URL is fetched once with the headers of the mounted Secret (`flows.urlHeadersSecret`: one file per header,
the file name is the header's name, its content the value; none when the folder is absent) and written to
DEST_DIR/<name>. The body must be one Langflow flow (a JSON object with `data.nodes`): the fill-component-code
step that follows loads it like the chart's own flows. Any failure (HTTP status, timeout, not a flow) ends the
start with exit status 1 and one line naming the URL and the reason, so a missing flow is a failed pod start, not
a silently missing endpoint. Header values never appear in the log.

Usage: python fetch_flows.py [--headers DIR] [--timeout SECONDS] DEST_DIR NAME=URL [NAME=URL ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path


def headers_from(folder: Path | None) -> dict[str, str]:
    """The Secret's keys as headers (Kubernetes' `..data` bookkeeping entries left out)."""
    if folder is None or not folder.is_dir():
        return {}
    return {
        p.name: p.read_text().strip() for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
    }


def fetch(url: str, headers: dict[str, str], timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json", **headers})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return bytes(response.read())


def check_flow(body: bytes) -> None:
    """Raise ValueError unless `body` is one Langflow flow."""
    try:
        flow = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(flow, dict) or not isinstance((flow.get("data") or {}).get("nodes"), list):
        raise ValueError("not a Langflow flow (no data.nodes)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fetch_flows.py")
    p.add_argument("--headers", type=Path, default=None)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("dest", type=Path)
    p.add_argument("flows", nargs="+", metavar="NAME=URL")
    args = p.parse_args(argv)
    headers = headers_from(args.headers)
    failures = 0
    for item in args.flows:
        name, sep, url = item.partition("=")
        if not sep or not name.endswith(".json") or "/" in name:
            print(f"fetch_flows: {item!r}: expected NAME.json=URL", file=sys.stderr)
            failures += 1
            continue
        try:
            body = fetch(url, headers, args.timeout)
            check_flow(body)
        except urllib.error.HTTPError as exc:
            print(f"fetch_flows: {url}: HTTP {exc.code} {exc.reason}", file=sys.stderr)
            failures += 1
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            print(f"fetch_flows: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
            failures += 1
            continue
        (args.dest / name).write_bytes(body)
        print(f"{name}: {len(body)} bytes from {url}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
