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


def _request(path: str, headers: dict[str, str] | None = None, form: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET `path`, or POST `form` to it; (status, body)."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(_url(path), data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.status, response.read()


def _token() -> str:
    if os.environ.get("LANGFLOW_AUTO_LOGIN", "false").lower() == "true":
        _, body = _request("/api/v1/auto_login")
    else:
        user = os.environ.get("LANGFLOW_SUPERUSER", "")
        _, body = _request(
            "/api/v1/login", form={"username": user, "password": os.environ.get("LANGFLOW_SUPERUSER_PASSWORD", "")}
        )
    return str(json.loads(body)["access_token"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["/api/v1/all"], help="GET paths to warm, with a session")
    parser.add_argument("--requests", type=int, default=2, help="times each path is requested")
    parser.add_argument("--record", default="/tmp/langflow-platform-warmup.json", help="where the timings go")
    args = parser.parse_args()
    try:
        status, _ = _request("/health_check")
    except (OSError, urllib.error.URLError) as exc:
        print(f"warmup: /health_check not answering yet: {exc}")
        return 1
    if status != 200:
        print(f"warmup: /health_check answered {status}")
        return 1
    rounds = max(1, args.requests)
    timings: dict[str, list[float]] = {}
    try:
        # compressed, as a browser asks for it: the compression is part of what a user's first request costs
        headers = {"Authorization": f"Bearer {_token()}", "Accept-Encoding": "gzip"}
        for path in args.paths:
            for _ in range(rounds):
                started = time.monotonic()
                status, _ = _request(path, headers)
                timings.setdefault(path, []).append(round((time.monotonic() - started) * 1000, 1))
                if status != 200:
                    print(f"warmup: GET {path} answered {status}")
                    return 1
    except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
        print(f"warmup: {exc}")
        return 1
    try:
        with open(args.record, "w", encoding="utf-8") as f:
            json.dump({"at": time.time(), "ms": timings}, f)
    except OSError as exc:
        print(f"warmup: could not record timings in {args.record}: {exc}")
    print(f"warmup: warm ({json.dumps(timings)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
