"""helm as a library: render charts to objects, install/upgrade/uninstall, with errors that say what failed."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .paths import UMBRELLA, profile_file, tool

SECRET_SPEC_LABEL = "langflow-platform.dev/secret-spec"
SECRET_GENERATOR = UMBRELLA / "files" / "secret-generator.py"
# one per test session: every render of this session gets the same generated values (as one cluster would keep
# them), whichever Manifest object asks; a new session, new values
GENERATOR_SEED = secrets.token_hex(16)


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
    _generated: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False, repr=False)

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

    def secret_specs(self) -> list[dict[str, Any]]:
        """The generated Secrets' specs (global.generatedSecrets.mode job): what the secret generator reads."""
        return [
            json.loads(cm["data"]["spec.json"])
            for cm in self.of_kind("ConfigMap")
            if SECRET_SPEC_LABEL in (cm["metadata"].get("labels") or {})
        ]

    def generated_secrets(self) -> list[dict[str, Any]]:
        """The Secrets the secret generator Job creates from this render's specs, made once per Manifest by the
        chart's own generator (files/secret-generator.py --offline), so every look-up sees the same values."""
        specs = self.secret_specs()
        if specs and not self._generated:
            self._generated.update({s["metadata"]["name"]: s for s in self._run_generator(specs)})
        return list(self._generated.values())

    def secret(self, name: str) -> dict[str, Any] | None:
        """A Secret as the cluster would hold it after install: rendered, or made by the secret generator."""
        for o in self.of_kind("Secret"):
            if o["metadata"]["name"] == name:
                return o
        return next((s for s in self.generated_secrets() if s["metadata"]["name"] == name), None)

    def with_generated_secrets(self) -> Manifest:
        """The release as the cluster holds it once the secret generator Job has run (its Secrets added)."""
        made = self.generated_secrets()
        return Manifest([*self.objects, *made], source=f"{self.source} (+ generated Secrets)") if made else self

    def _run_generator(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="secret-specs-") as tmp:
            paths = []
            for i, spec in enumerate(specs):
                path = Path(tmp) / f"{i}.json"
                path.write_text(json.dumps(spec))
                paths.append(str(path))
            namespace = next(
                (o["metadata"].get("namespace") for o in self.objects if o["metadata"].get("namespace")), ""
            )
            proc = subprocess.run(
                [sys.executable, str(SECRET_GENERATOR), "--offline", *paths],
                capture_output=True, text=True, timeout=60,
                env={"NAMESPACE": namespace or "default", "SEED": GENERATOR_SEED},
            )  # fmt: skip
        if proc.returncode != 0:
            raise HelmError(["python", str(SECRET_GENERATOR), "--offline"], proc.stderr)
        return list(json.loads(proc.stdout))


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
