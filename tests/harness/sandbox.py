"""bubblewrap sandboxes that run a process the way its pod would: the pod's uid/gid, a read-only view of the
host (`--ro-bind / /`) and a bind per declared volume (writable only for emptyDir/PVC), so a chart that forgets
a writable mount fails here as it would in a cluster."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from .paths import ROOT

Bind = tuple[Path | str, str, bool]  # (host source, path in the sandbox, writable)


def _under(path: Path, parent: str) -> bool:
    return path == Path(parent) or Path(parent) in path.parents


def bwrap(
    uid: int,
    gid: int,
    binds: Sequence[Bind],
    argv: Sequence[str],
    *,
    chdir: str = "/",
    unshare_net: bool = False,
    unshare_pid: bool = False,
    die_with_parent: bool = True,
) -> list[str]:
    """The bwrap command line. Binds are applied parents first (a PVC inside an emptyDir lands inside it). When
    a bind hides the repository (a clone under /tmp while the pod mounts an emptyDir at /tmp), the repository is
    bound back read-only, so the harness's own interpreters and scripts stay reachable."""
    cmd = [shutil.which("bwrap") or "bwrap", "--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    if unshare_net:
        cmd.append("--unshare-net")
    if unshare_pid:
        cmd.append("--unshare-pid")
    cmd += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    if die_with_parent:
        cmd.append("--die-with-parent")
    ordered = sorted(binds, key=lambda b: len(Path(b[1]).parts))
    for src, dest, writable in ordered:
        cmd += ["--bind" if writable else "--ro-bind", str(src), dest]
    if any(_under(ROOT, dest) for _, dest, _ in ordered):
        cmd += ["--ro-bind", str(ROOT), str(ROOT)]
    return [*cmd, "--chdir", chdir, "--", *argv]
