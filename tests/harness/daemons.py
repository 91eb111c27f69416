"""Long-running local processes of the harness (the control plane, the real node), recorded in
`<workdir>/state.json` so that another process (`make cluster-down`) can find and stop them.

`DaemonState` is a mixin for a class with `workdir: Path` and `processes: dict[str, Process]`; `pid_alive` and
`stop_pid` work from the recorded pids alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .servers import Process, spawn


class DaemonState:
    workdir: Path
    processes: dict[str, Process]
    # name -> executable, where a daemon's recorded name is not its program's (e.g. a relay run by socat)
    executables: dict[str, str] = {}  # noqa: RUF012 (read-only class default)

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self, **kw: Any) -> None:
        state = self._state()
        state.update(kw)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=1))

    def _start(self, name: str, cmd: Sequence[str], logs: Path | None = None) -> None:
        """Spawn `cmd` as daemon `name` (log in `logs`, default workdir/logs) and record its pid."""
        proc = spawn(name, cmd, (logs or self.workdir / "logs") / f"{name}.log", env={**os.environ, "GOMAXPROCS": "2"})
        self.processes[name] = proc
        pids = self._state().get("pids", {})
        pids[name] = proc.popen.pid
        self._save(pids=pids)

    def _check_alive(self) -> bool:
        """True while every daemon started here runs; raises ServerDied (with its log's tail) otherwise."""
        for p in self.processes.values():
            p.ensure_alive()
        return True

    def _recorded_alive(self) -> bool:
        pids: dict[str, int] = self._state().get("pids", {})
        return bool(pids) and all(pid_alive(pid, self.executables.get(n, n)) for n, pid in pids.items())

    def _stop_all(self, names: Sequence[str]) -> None:
        """Stop the daemons in `names` order: ours by handle, others' by recorded pid."""
        pids: dict[str, int] = self._state().get("pids", {})
        for name in names:
            proc = self.processes.pop(name, None)
            if proc is not None:
                proc.stop(grace=10)
            elif name in pids:
                stop_pid(pids[name], self.executables.get(name, name))

    def diagnostics(self, names: Sequence[str], lines: int = 15) -> str:
        """The last lines of each daemon's log."""
        out = []
        for name in names:
            log = self.workdir / "logs" / f"{name}.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {log} ---\n" + "\n".join(tail))
        return "\n".join(out)


def pid_alive(pid: int, executable: str) -> bool:
    """True when `pid` runs `executable` (guards against a recycled pid)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return False
    return Path(argv0).name == executable


def stop_pid(pid: int, executable: str, grace: float = 10) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL after `grace` seconds."""
    if not pid_alive(pid, executable):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid, executable):
        time.sleep(0.2)
    if pid_alive(pid, executable):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
