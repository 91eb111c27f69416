"""helm as a library: render charts to objects, install/upgrade/uninstall, with errors that say what failed."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paths import UMBRELLA, profile_file, tool


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        self.args_ = list(args)
        self.stderr = stderr.strip()
        super().__init__(f"helm {' '.join(args[1:4])} ... failed:\n{self.stderr}")


@dataclass(frozen=True)
class Manifest:
    """A rendered release: its objects, with look-ups by kind and name."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return o
        names = [o["metadata"]["name"] for o in self.of_kind(kind)]
        raise KeyError(f"{self.source}: no {kind} named {name!r} (have: {names})")

    def kinds(self) -> set[str]:
        return {o["kind"] for o in self.objects}

    def workloads(self) -> list[dict[str, Any]]:
        kinds = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
        return [o for o in self.objects if o.get("kind") in kinds]

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(self.objects, sort_keys=False)


def run(args: Sequence[str], *, check: bool = True, timeout: float = 300, env: Mapping[str, str] | None = None) -> str:
    cmd = [tool("helm"), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise HelmError(cmd, proc.stderr or proc.stdout)
    return proc.stdout


def value_args(values: Iterable[Path | str] = (), set_values: Mapping[str, Any] | None = None) -> list[str]:
    args: list[str] = []
    for v in values:
        args += ["-f", str(v)]
    for k, v in (set_values or {}).items():
        args += ["--set-json", f"{k}={json.dumps(v)}"] if not isinstance(v, str) else ["--set-string", f"{k}={v}"]
    return args


def template(
    chart: Path | str = UMBRELLA,
    *,
    values: Iterable[Path | str] = (),
    set_values: Mapping[str, Any] | None = None,
    release: str = "lf",
    namespace: str = "langflow",
    api_versions: Iterable[str] = (),
    extra: Sequence[str] = (),
) -> Manifest:
    args = ["template", release, str(chart), "--namespace", namespace, *value_args(values, set_values)]
    for a in api_versions:
        args += ["--api-versions", a]
    out = run([*args, *extra])
    objects = [d for d in yaml.safe_load_all(out) if d]
    return Manifest(objects, source=f"{Path(chart).name} {' '.join(str(v) for v in values)}".strip())


def render_profile(profile: str, **kwargs: Any) -> Manifest:
    """Render the umbrella with one of the values/ profiles."""
    values = [profile_file(profile), *kwargs.pop("values", ())]
    m = template(UMBRELLA, values=values, **kwargs)
    return Manifest(m.objects, source=f"profile {profile}")
