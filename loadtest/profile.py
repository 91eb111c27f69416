"""Where the time goes: py-spy samples a running Langflow while the load runs, and the raw (collapsed) stacks
are summarised into the functions that hold the CPU, inclusive and self, by share of samples.

py-spy is optional (PyPI `py-spy`); `available()` says whether it is installed. It needs ptrace rights on
the target (root, or the same user with ptrace_scope 0).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def available() -> bool:
    return py_spy() is not None


@dataclass
class Recording:
    label: str
    raw: Path
    svg: Path
    proc: subprocess.Popen[bytes]

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)


def record(pid: int, seconds: float, out: Path, label: str, rate: int = 50) -> Recording:
    """Start sampling `pid` and its children for `seconds` (GIL-holding stacks only: CPU, not waiting)."""
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    raw = out / f"profile-{label}.txt"
    svg = out / f"profile-{label}.svg"
    cmd = [tool, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil", "--rate", str(rate)]
    cmd += ["--duration", str(int(seconds)), "--format", "raw", "-o", str(raw)]
    log = (out / f"profile-{label}.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return Recording(label, raw, svg, proc)


def _frame(f: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep function and the package-relative file
    name, _, where = f.partition(" (")
    where = where.rstrip(")")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def summarise(raw: Path, top: int = 80) -> dict[str, object]:
    """Top functions by inclusive and by self samples, as shares of all samples."""
    inclusive: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    total = 0
    if not raw.exists():
        return {"samples": 0, "inclusive": [], "self": []}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";") if f and not f.startswith("process ")]
        for f in set(frames):
            inclusive[f] += n
        if frames:
            self_[frames[-1]] += n
    share = lambda c: [(f, round(n / total, 3)) for f, n in c.most_common(top)] if total else []  # noqa: E731
    return {"samples": total, "inclusive": share(inclusive), "self": share(self_)}


PLUMBING = (
    "asyncio/",
    "uvicorn/",
    "starlette/",
    "gunicorn/",
    "anyio/",
    "typer/",
    "multiprocess/",
    "multiprocessing/",
    "threading.py",
    "concurrent/",
    "fastapi/routing.py",
    "fastapi/middleware",
    "langflow/__main__.py",
    "langflow/langflow_launcher.py",
    "langflow/server.py",
    "langflow/middleware.py",
    "<module>",
)


def interesting(summary: dict[str, object], top: int = 8) -> list[tuple[str, float]]:
    """Inclusive frames below the server plumbing (process start, event loop, ASGI middleware), i.e. the
    endpoints, Langflow's own work and the libraries it calls, biggest first."""
    rows = summary.get("inclusive") or []
    return [(f, s) for f, s in rows if not any(k in f for k in PLUMBING)][:top]  # type: ignore[union-attr]
