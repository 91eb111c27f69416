"""The IDE's startup probe: succeed only once this Langflow process serves its heaviest pages warm.

Run by kubelet inside the Langflow container (`python /opt/langflow-platform/warmup.py`), so it sees the
container's environment: the port, auto-login and the superuser's credentials come from there, never from
the probe's definition. Each attempt:
1. GET /health_check (database and cache up); not yet: exit 1 and kubelet retries after periodSeconds.
2. Take a session (auto-login, or the superuser's login) and GET each path given (the chart's
   `warmup.paths`) `--requests` times: the first call of a process pays for lazy imports, the component catalogue's
   filters and the first encoding of its 3 MB; users of a fresh pod then do not.
3. Record the timings in `--record` (the pod's /tmp) and exit 0: the pod may become Ready.
Python's standard library only: it runs in the official image as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT = 20.0


def _url(path: str) -> str:
    return f"http://127.0.0.1:{os.environ.get('LANGFLOW_PORT', '7860')}{path}"


def _get(path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(_url(path), headers={"Accept-Encoding": "gzip", **(headers or {})})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, response.read()


def _token() -> str:
    if os.environ.get("LANGFLOW_AUTO_LOGIN", "false").lower() == "true":
        _, body = _get("/api/v1/auto_login")
    else:
        form = urllib.parse.urlencode(
            {
                "username": os.environ.get("LANGFLOW_SUPERUSER", ""),
                "password": os.environ.get("LANGFLOW_SUPERUSER_PASSWORD", ""),
            }
        ).encode()
        request = urllib.request.Request(_url("/api/v1/login"), data=form, method="POST")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = response.read()
    return str(json.loads(body)["access_token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["/api/v1/all"], help="GET paths to warm, with a session")
    parser.add_argument("--requests", type=int, default=2, help="times each path is requested")
    parser.add_argument("--record", default="/tmp/langflow-platform-warmup.json", help="where the timings go")
    args = parser.parse_args()
    try:
        status, _ = _get("/health_check")
    except (OSError, urllib.error.URLError) as exc:
        print(f"warmup: /health_check not answering yet: {exc}")
        return 1
    if status != 200:
        print(f"warmup: /health_check answered {status}")
        return 1
    rounds = max(1, args.requests)
    timings: dict[str, list[float]] = {}
    try:
        headers = {"Authorization": f"Bearer {_token()}"}
        for path in args.paths:
            for _ in range(rounds):
                started = time.monotonic()
                status, _ = _get(path, headers)
                timings.setdefault(path, []).append(round((time.monotonic() - started) * 1000, 1))
                if status != 200:
                    print(f"warmup: GET {path} answered {status}")
                    return 1
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        print(f"warmup: {exc}")
        return 1
    record = args.record
    try:
        with open(record, "w", encoding="utf-8") as f:
            json.dump({"at": time.time(), "ms": timings}, f)
    except OSError as exc:
        print(f"warmup: could not record timings in {record}: {exc}")
    print(f"warmup: warm ({json.dumps(timings)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
