"""Real Langflow 1.13 processes started the way the chart's pods would run them.

The chart is rendered (a `helm.Manifest`), and the IDE Deployment's or the runtime StatefulSet's container is
turned into a process:

- env: the container's `env`/`envFrom`, with `secretKeyRef`/`configMapKeyRef` resolved from the rendered
  Secrets/ConfigMaps and `$(VAR)` references expanded as the kubelet does (only earlier variables, `$$` escapes);
- in-cluster hostnames (`<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc[.cluster.local]`) mapped to loopback ports of
  servers the harness started (`endpoints={"lf-database": pg.port, "lf-broker": {5672: mq.amqp_port}}`);
- the pod's security context: bubblewrap runs the process as `runAsUser`/`runAsGroup` in a user namespace
  over a READ-ONLY view of the host (`--ro-bind / /`), with a writable `--bind` only for each emptyDir/PVC
  the container mounts (ConfigMap/Secret volumes are written to files and bound read-only). A chart that
  forgets a writable mount fails here as it would on a cluster with `readOnlyRootFilesystem: true`;
- the image's defaults where the pod spec has none (`langflow run`, HOME=/app/data, uid 1000 gid 0);
- loopback only: LANGFLOW_HOST is forced to 127.0.0.1, LANGFLOW_PORT (and a Prometheus port) to free ports.

Mount points the host lacks (e.g. /app/data) are created as empty directories on the host, because bubblewrap
cannot create them under a read-only root; they stay (see `_mountpoints`).

Usage:
    with langflow_process(manifest, "runtime", endpoints={...}) as lf:
        requests.post(f"{lf.base_url}/api/v1/run/echo", headers={"x-api-key": lf.api_key()}, json={...})
    with baseline_process(flows_dir=...) as lf: ...   # Langflow's own defaults (SQLite, no cache)
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from . import sandbox
from .helm import Manifest
from .paths import ROOT, TOOLS
from .servers import LOOPBACK, free_port

LANGFLOW_VENV = TOOLS / "langflow-venv"
HARNESS_VENV = ROOT / ".venv"
# The defaults of the langflowai/langflow image where the pod spec says nothing.
IMAGE_COMMAND = ("langflow", "run")
WORKER_COMMAND = ("python", "-m", "langflow_worker")  # worker/Dockerfile's entrypoint
IMAGE_HOME = "/app/data"
IMAGE_UID = 1000
IMAGE_GID = 0
WORKLOAD_KINDS = {"ide": ("Deployment",), "runtime": ("StatefulSet",)}

# endpoints: service name -> loopback port (every port of the Service) or {service port: loopback port}
Endpoints = Mapping[str, int | Mapping[int, int]]


class LangflowError(RuntimeError):
    """Langflow did not start, died, or the pod spec cannot be run; the message carries the log's tail."""


# ------------------------------------------------------------------------------------------ pod contract
@dataclass
class Mount:
    """One volume mount of the container, materialised as a host path."""

    path: str  # mountPath inside the pod
    source: Path  # host path bound there
    writable: bool
    kind: str  # emptyDir | persistentVolumeClaim | configMap | secret | projected


@dataclass
class PodContract:
    """What a container of a rendered workload needs to run: command, env, uid/gid, mounts."""

    workload: dict[str, Any]
    container: dict[str, Any]
    command: list[str]
    env: dict[str, str]
    uid: int
    gid: int
    mounts: list[Mount]
    working_dir: str | None = None

    @property
    def name(self) -> str:
        return f"{self.workload['metadata']['name']}/{self.container['name']}"


def find_workload(manifest: Manifest, workload: str) -> dict[str, Any]:
    """The IDE Deployment or runtime StatefulSet (by component label, else by name suffix)."""
    kinds = WORKLOAD_KINDS.get(workload, ("Deployment", "StatefulSet"))
    candidates = [o for o in manifest.objects if o.get("kind") in kinds]
    for o in candidates:
        labels = o["metadata"].get("labels") or {}
        if labels.get("app.kubernetes.io/component") == workload:
            return o
    for o in candidates:
        if o["metadata"]["name"].endswith(f"-{workload}"):
            return o
    have = [f"{o['kind']}/{o['metadata']['name']}" for o in manifest.workloads()]
    raise LangflowError(f"{manifest.source}: no {'/'.join(kinds)} for {workload!r} (workloads: {have})")


def find_container(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """The named container (or initContainer), else the one running Langflow (image or command mentions langflow,
    not a worker)."""
    containers = workload["spec"]["template"]["spec"]["containers"]
    if name:
        for c in [*containers, *(workload["spec"]["template"]["spec"].get("initContainers") or [])]:
            if c["name"] == name:
                return c
        raise LangflowError(f"{workload['metadata']['name']}: no container {name!r}")
    for c in containers:
        if c["name"] == "langflow":
            return c
    for c in containers:
        text = " ".join([str(c.get("image", "")), *map(str, c.get("command") or []), *map(str, c.get("args") or [])])
        if "langflow" in text and "worker" not in text:
            return c
    return containers[0]


def _secret_data(obj: dict[str, Any]) -> dict[str, str]:
    out = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    return out


def _configmap_data(obj: dict[str, Any]) -> dict[str, str]:
    out = {k: str(v) for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v).decode() for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _lookup(manifest: Manifest, kind: str, name: str) -> dict[str, str] | None:
    if kind == "Secret":  # rendered, or made by the secret generator Job (global.generatedSecrets.mode job)
        secret = manifest.secret(name)
        return _secret_data(secret) if secret else None
    for o in manifest.of_kind(kind):
        if o["metadata"]["name"] == name:
            return _secret_data(o) if kind == "Secret" else _configmap_data(o)
    return None


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, `$$` is a literal `$`, others stay."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, value)


def resolve_env(manifest: Manifest, workload: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it from the rendered objects."""
    env: dict[str, str] = {}
    pod_name = f"{workload['metadata']['name']}-0"
    namespace = workload["metadata"].get("namespace", "default")
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            if key in src:
                data = _lookup(manifest, kind, src[key]["name"])
                if data is None and not src[key].get("optional"):
                    raise LangflowError(f"envFrom: {kind} {src[key]['name']!r} is not in the rendered manifest")
                env.update({prefix + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item:
            env[name] = expand(str(item["value"]), env)
            continue
        ref = item.get("valueFrom") or {}
        if "secretKeyRef" in ref or "configMapKeyRef" in ref:
            kind, r = (
                ("Secret", ref["secretKeyRef"]) if "secretKeyRef" in ref else ("ConfigMap", ref["configMapKeyRef"])
            )
            data = _lookup(manifest, kind, r["name"])
            if data is None or r["key"] not in data:
                if r.get("optional"):
                    continue
                raise LangflowError(
                    f"env {name}: {kind} {r['name']!r} key {r['key']!r} is not in the rendered manifest "
                    "(an existingSecret must be supplied to the harness as an override)"
                )
            env[name] = data[r["key"]]
        elif "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            env[name] = {
                "metadata.name": pod_name,
                "metadata.namespace": namespace,
                "status.podIP": LOOPBACK,
                "status.hostIP": LOOPBACK,
                "spec.nodeName": "harness",
                "spec.serviceAccountName": workload["spec"]["template"]["spec"].get("serviceAccountName", "default"),
            }.get(path, "")
        elif "resourceFieldRef" in ref:
            env[name] = "1"
        else:
            env[name] = ""
    return env


def map_hosts(env: Mapping[str, str], endpoints: Endpoints, namespace: str) -> dict[str, str]:
    """Replace in-cluster Service names (and their ports) by loopback addresses of the harness's servers.

    One pass over every value, so an address already rewritten is never rewritten again. Keys may also be
    loopback names (`127.0.0.1`, `localhost`: a sidecar talking to its pod's main container); a port the
    mapping does not list stays as it is for those, and is an error for a Service name."""
    by_name: dict[str, str] = {}
    for svc in endpoints:
        for n in (f"{svc}.{namespace}.svc.cluster.local", f"{svc}.{namespace}.svc", f"{svc}.{namespace}", svc):
            by_name.setdefault(n, svc)
    if not by_name:
        return dict(env)
    names = sorted(by_name, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![A-Za-z0-9.-])(" + "|".join(re.escape(n) for n in names) + r")(?::(\d+))?(?![A-Za-z0-9.-])"
    )
    loopbacks = {"127.0.0.1", "localhost", LOOPBACK}

    def sub(m: re.Match[str]) -> str:
        svc = by_name[m.group(1)]
        ports = endpoints[svc]
        if m.group(2) is None:
            return LOOPBACK
        p = int(m.group(2))
        if isinstance(ports, int):
            return f"{LOOPBACK}:{ports}"
        if p in ports:
            return f"{LOOPBACK}:{ports[p]}"
        if svc in loopbacks:
            return m.group(0)
        raise LangflowError(f"service {svc} port {p} is used by the pod but the harness maps only {dict(ports)}")

    out = {key: pattern.sub(sub, value) for key, value in env.items()}
    # a HOST variable naming a Service: its sibling PORT variable must follow
    for key, value in env.items():
        if key.endswith("HOST") and value in by_name:
            ports = endpoints[by_name[value]]
            port_key = key[: -len("HOST")] + "PORT"
            if port_key in out and env[port_key].isdigit():
                p = int(env[port_key])
                out[port_key] = str(ports if isinstance(ports, int) else ports.get(p, p))
    return out


def _run_as(workload: dict[str, Any], container: dict[str, Any], assigned_uid: int | None = None) -> tuple[int, int]:
    """The uid/gid the container runs as. `assigned_uid`: the platform assigns it (OpenShift's restricted-v2 SCC: a
    uid from the namespace's range, group 0), which it does only for a pod that sets no ids of its own."""
    pod_sc = workload["spec"]["template"]["spec"].get("securityContext") or {}
    c_sc = container.get("securityContext") or {}
    if assigned_uid is not None:
        fixed = {k: v for sc in (pod_sc, c_sc) for k, v in sc.items() if k in ("runAsUser", "runAsGroup", "fsGroup")}
        if fixed:
            raise LangflowError(
                f"{workload['metadata']['name']}/{container['name']} sets {fixed}: OpenShift's restricted-v2 SCC "
                "rejects ids outside the namespace's range (global.compatibility.openshift.adaptSecurityContext)"
            )
        return assigned_uid, 0
    uid = c_sc.get("runAsUser", pod_sc.get("runAsUser", IMAGE_UID))
    gid = c_sc.get("runAsGroup", pod_sc.get("runAsGroup", IMAGE_GID))
    return int(uid), int(gid)


def materialise_mounts(
    manifest: Manifest, workload: dict[str, Any], container: dict[str, Any], root: Path, state_dir: Path | None
) -> list[Mount]:
    spec = workload["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes") or []}
    claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates") or []}
    mounts: list[Mount] = []
    for i, vm in enumerate(container.get("volumeMounts") or []):
        name, path = vm["name"], vm["mountPath"]
        vol = volumes.get(name)
        sub = vm.get("subPath", "")
        if vol is None and name in claims:
            vol = {"name": name, "persistentVolumeClaim": {"claimName": name}}
        if vol is None:
            raise LangflowError(f"volumeMount {name!r} at {path} has no volume in the pod spec")
        if "emptyDir" in vol or "persistentVolumeClaim" in vol or "ephemeral" in vol:
            kind = "emptyDir" if "emptyDir" in vol else "persistentVolumeClaim"
            base = (state_dir if kind == "persistentVolumeClaim" and state_dir else root / "volumes") / name
            src = base / sub if sub else base
            src.mkdir(parents=True, exist_ok=True)
            mounts.append(Mount(path, src, not vm.get("readOnly", False), kind))
            continue
        files: dict[str, str] = {}
        kinds = [k for k in ("configMap", "secret") if k in vol]
        sources = [{k: vol[k]} for k in kinds] or list((vol.get("projected") or {}).get("sources") or [])
        if not sources:
            raise LangflowError(f"volume {name!r} ({sorted(vol)}) cannot be materialised by the harness")
        for source in sources:
            for kind, obj_kind, ref_key in (("configMap", "ConfigMap", "name"), ("secret", "Secret", "secretName")):
                if kind not in source:
                    continue
                ref = source[kind]
                obj_name = ref.get(ref_key) or ref.get("name")
                data = _lookup(manifest, obj_kind, obj_name)
                if data is None:
                    if ref.get("optional"):
                        continue
                    raise LangflowError(f"volume {name!r}: {obj_kind} {obj_name!r} is not in the rendered manifest")
                items = ref.get("items")
                if items:
                    files.update({it["path"]: data[it["key"]] for it in items if it["key"] in data})
                else:
                    files.update(data)
        base = root / "volumes" / f"{i}-{name}"
        for rel, text in files.items():
            p = base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        base.mkdir(parents=True, exist_ok=True)
        src = base / sub if sub else base
        if not src.exists():
            raise LangflowError(f"volume {name!r} has no key {sub!r} for subPath at {path}")
        mounts.append(Mount(path, src, False, "projected" if "projected" in vol else kinds[0]))
    return sorted(mounts, key=lambda m: m.path.count("/"))


def pod_contract(
    manifest: Manifest,
    workload: str = "ide",
    *,
    container: str | None = None,
    endpoints: Endpoints | None = None,
    root: Path,
    state_dir: Path | None = None,
    assigned_uid: int | None = None,
) -> PodContract:
    """Everything needed to run one container of the rendered IDE/runtime workload as a local process
    (`assigned_uid`: see `_run_as`)."""
    obj = find_workload(manifest, workload)
    c = find_container(obj, container)
    spec = obj["spec"]["template"]["spec"]
    if spec.get("enableServiceLinks", True):
        # service links inject LANGFLOW_PORT=tcp://... into the pod and break Langflow's settings
        raise LangflowError(f"{obj['metadata']['name']}: enableServiceLinks must be false for Langflow pods")
    env = resolve_env(manifest, obj, c)
    env = map_hosts(env, endpoints or {}, obj["metadata"].get("namespace", "default"))
    default = WORKER_COMMAND if _is_worker(c) else IMAGE_COMMAND
    command = [*(c.get("command") or default), *(c.get("args") or [])]
    if c.get("args") and not c.get("command"):
        command = [*default, *c["args"]] if c["args"][0] not in ("langflow", "python", "python3") else c["args"]
    command = [expand(str(a), env) for a in command]
    uid, gid = _run_as(obj, c, assigned_uid)
    mounts = materialise_mounts(manifest, obj, c, root, state_dir)
    return PodContract(obj, c, command, env, uid, gid, mounts, c.get("workingDir"))


# ---------------------------------------------------------------------------------------------- process
def _is_worker(container: dict[str, Any]) -> bool:
    return "worker" in str(container.get("image", "")) or "worker" in str(container.get("name", ""))


def _executable(arg0: str, container: dict[str, Any]) -> str:
    """Map the image's executables to the harness's venvs (Langflow's, or the project's for our worker)."""
    base = os.path.basename(arg0)
    venv = HARNESS_VENV if _is_worker(container) else LANGFLOW_VENV
    if base in ("langflow", "python", "python3", "uvicorn", "gunicorn", "langflow-worker"):
        candidate = venv / "bin" / base
        if not candidate.exists():
            raise LangflowError(f"{candidate} is missing: run `tools/install.sh langflow` (or `make tools`)")
        return str(candidate)
    return arg0


def _rewrite_flag(cmd: list[str], flag: str, value: str) -> list[str]:
    out = list(cmd)
    for i, a in enumerate(out):
        if a == flag and i + 1 < len(out):
            out[i + 1] = value
        elif a.startswith(flag + "="):
            out[i] = f"{flag}={value}"
    return out


def _mountpoints(mounts: Sequence[Mount]) -> None:
    """Create missing mount points on the host (bubblewrap cannot under a read-only root). They are left in
    place: removing a directory on the host detaches the mounts on it in every other mount namespace, which
    would pull the volume from under a concurrently running process that uses the same path."""
    for m in mounts:
        target = Path(m.path)
        if m.source.is_file():  # a subPath file mount
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch(exist_ok=True)
        else:
            target.mkdir(parents=True, exist_ok=True)


def bwrap_command(contract: PodContract, argv: Sequence[str]) -> list[str]:
    """bubblewrap: read-only host, the pod's uid/gid, a bind per mount (writable only for emptyDir/PVC)."""
    wd = contract.working_dir
    chdir = wd if wd and (Path(wd).exists() or any(m.path == wd for m in contract.mounts)) else "/"
    binds = [(m.source, m.path, m.writable) for m in contract.mounts]
    return sandbox.bwrap(contract.uid, contract.gid, binds, argv, chdir=chdir, die_with_parent=False)


@dataclass
class LangflowProcess:
    """A running Langflow (or worker) process: where it listens, its env, its log."""

    name: str
    base_url: str
    port: int
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes]
    command: list[str]
    contract: PodContract | None = None
    metrics_port: int | None = None
    _token: str | None = field(default=None, repr=False)
    _api_key: str | None = field(default=None, repr=False)

    @property
    def metrics_url(self) -> str | None:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics" if self.metrics_port else None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def fail(self, message: str) -> LangflowError:
        return LangflowError(
            f"{self.name}: {message}\ncommand: {' '.join(self.command)}\n--- {self.log} ---\n{self.tail()}"
        )

    def wait_healthy(self, timeout: float = 180, path: str = "/health_check") -> float:
        """Poll `path` until it answers 200 with status ok; returns the seconds waited. Raises with the log."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.alive():
                raise self.fail(f"exited with {self.popen.returncode} before {path} answered")
            try:
                r = requests.get(self.base_url + path, timeout=5)
                if r.status_code == 200 and (path != "/health_check" or r.json().get("status") == "ok"):
                    return time.monotonic() - t0
                last = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.5)
        raise self.fail(f"{path} not healthy after {timeout:.0f}s (last: {last})")

    def stop(self, grace: float = 20) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    # --- API helpers ---------------------------------------------------------------------------------
    @property
    def auto_login(self) -> bool:
        return self.env.get("LANGFLOW_AUTO_LOGIN", "false").lower() in ("1", "true", "yes")

    def superuser(self) -> tuple[str, str]:
        """The superuser's credentials from the process env (what the chart's Secret holds)."""
        return self.env.get("LANGFLOW_SUPERUSER", "langflow"), self.env.get("LANGFLOW_SUPERUSER_PASSWORD", "")

    def access_token(self) -> str:
        """A bearer token: auto-login where enabled, else the superuser's login form."""
        if self._token:
            return self._token
        if self.auto_login:
            r = requests.get(f"{self.base_url}/api/v1/auto_login", timeout=30)
        else:
            user, pw = self.superuser()
            r = requests.post(f"{self.base_url}/api/v1/login", data={"username": user, "password": pw}, timeout=30)
        if r.status_code != 200:
            raise self.fail(f"login failed: {r.status_code} {r.text[:300]}")
        self._token = str(r.json()["access_token"])
        return self._token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token()}"}

    def api_key(self) -> str:
        """The key for x-api-key: LANGFLOW_API_KEY when API_KEY_SOURCE=env, else a new key made via the API."""
        if self._api_key:
            return self._api_key
        if self.env.get("LANGFLOW_API_KEY_SOURCE") == "env" and self.env.get("LANGFLOW_API_KEY"):
            self._api_key = self.env["LANGFLOW_API_KEY"]
            return self._api_key
        r = requests.post(
            f"{self.base_url}/api/v1/api_key/", json={"name": "harness"}, headers=self.headers(), timeout=30
        )
        if r.status_code not in (200, 201):
            raise self.fail(f"creating an API key failed: {r.status_code} {r.text[:300]}")
        self._api_key = str(r.json()["api_key"])
        return self._api_key

    def flows(self) -> list[dict[str, Any]]:
        """The flows the superuser sees (header view: id, name, endpoint_name, ...)."""
        r = requests.get(
            f"{self.base_url}/api/v1/flows/",
            params={"header_flows": "true", "get_all": "true"},
            headers=self.headers(),
            timeout=60,
        )
        if r.status_code != 200:
            raise self.fail(f"listing flows failed: {r.status_code} {r.text[:300]}")
        return list(r.json())


def run_init_containers(
    manifest: Manifest,
    workload: str,
    *,
    root: Path,
    endpoints: Endpoints | None = None,
    state_dir: Path | None = None,
    timeout: float = 300,
    assigned_uid: int | None = None,
) -> None:
    """Run the workload's initContainers in order, each to completion under bubblewrap with its own contract.

    They share `root`'s volumes with the containers started later under the same root (emptyDirs are
    root/volumes/<name>), as in the pod. Raises with the log's tail when one exits non-zero or times out."""
    obj = find_workload(manifest, workload)
    for ic in obj["spec"]["template"]["spec"].get("initContainers") or []:
        contract = pod_contract(
            manifest,
            workload,
            container=ic["name"],
            endpoints=endpoints,
            root=root,
            state_dir=state_dir,
            assigned_uid=assigned_uid,
        )
        argv = [_executable(contract.command[0], ic), *contract.command[1:]]
        env = {"PATH": f"{LANGFLOW_VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": IMAGE_HOME, "LANG": "C.UTF-8"}
        log = root / f"{workload}-init-{ic['name']}.log"
        _mountpoints(contract.mounts)
        with log.open("ab") as out:
            popen = subprocess.Popen(
                bwrap_command(contract, argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**env, **contract.env},
                start_new_session=True,
            )
            try:
                rc = popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(10)
                rc = None
        if rc != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            status = f"exited with {rc}" if rc is not None else f"did not finish within {timeout:.0f}s"
            raise LangflowError(f"initContainer {contract.name} {status}\n--- {log} ---\n{tail}")


def _start(
    name: str,
    contract: PodContract,
    root: Path,
    port: int,
    extra_env: Mapping[str, str],
    startup_timeout: float,
    health_path: str | None,
) -> Iterator[LangflowProcess]:
    env = {
        "PATH": f"{LANGFLOW_VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": IMAGE_HOME,
        "LANG": "C.UTF-8",
        **contract.env,
        # loopback only, on a free port
        "LANGFLOW_HOST": LOOPBACK,
        "LANGFLOW_PORT": str(port),
        **extra_env,
    }
    metrics_port = None
    if (
        env.get("LANGFLOW_PROMETHEUS_ENABLED", "").lower() in ("1", "true")
        and "LANGFLOW_PROMETHEUS_PORT" not in extra_env
    ):
        metrics_port = free_port()
        env["LANGFLOW_PROMETHEUS_PORT"] = str(metrics_port)
    elif "LANGFLOW_PROMETHEUS_PORT" in extra_env:
        metrics_port = int(extra_env["LANGFLOW_PROMETHEUS_PORT"])
    if env.get("LANGFLOW_DATABASE_URL", "").startswith("postgres") and not any(
        LANGFLOW_VENV.glob("lib/python*/site-packages/psycopg2")
    ):
        raise LangflowError(
            f"{name}: PostgreSQL needs langflow[postgresql] (psycopg2), as in the official images; "
            f"{LANGFLOW_VENV} lacks it: install `langflow[postgresql]==1.13.0` there (tools/install.sh langflow)"
        )
    argv = list(contract.command)
    argv[0] = _executable(argv[0], contract.container)
    argv = _rewrite_flag(_rewrite_flag(argv, "--host", LOOPBACK), "--port", str(port))
    cmd = bwrap_command(contract, argv)
    log = root / f"{name}.log"
    _mountpoints(contract.mounts)
    with log.open("ab") as out:
        popen = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        proc = LangflowProcess(name, f"http://{LOOPBACK}:{port}", port, env, log, popen, cmd, contract, metrics_port)
        try:
            if health_path:
                proc.wait_healthy(startup_timeout, health_path)
            yield proc
        finally:
            proc.stop()


@contextlib.contextmanager
def langflow_process(
    manifest: Manifest,
    workload: str = "ide",
    *,
    endpoints: Endpoints | None = None,
    overrides: Mapping[str, str] | None = None,
    port: int | None = None,
    container: str | None = None,
    startup_timeout: float = 240,
    health_path: str | None = "/health_check",
    state_dir: Path | None = None,
    keep_logs: Path | None = None,
    assigned_uid: int | None = None,
) -> Iterator[LangflowProcess]:
    """Run the IDE ("ide") or runtime ("runtime") container of a rendered release under bubblewrap.

    `endpoints` maps in-cluster Service names to loopback ports; `overrides` replaces env values last (use it
    sparingly: each override is a place where the harness differs from the chart). Yields once
    `health_path` answers (None: do not wait, e.g. for a worker container). Stops the process on exit;
    `keep_logs` copies its log there. The pod's initContainers run first when the Langflow container starts
    (it stands for the pod; a sidecar started on its own, e.g. the worker, joins that pod). `assigned_uid`: every
    container runs as that uid in group 0, as OpenShift's restricted-v2 SCC runs a pod that sets no ids.
    """
    root = Path(tempfile.mkdtemp(prefix=f"lfp-langflow-{workload}-"))
    try:
        contract = pod_contract(
            manifest,
            workload,
            container=container,
            endpoints=endpoints,
            root=root,
            state_dir=state_dir,
            assigned_uid=assigned_uid,
        )
        name = f"{workload}-{contract.container['name']}"
        if contract.container is find_container(contract.workload):
            run_init_containers(
                manifest, workload, root=root, endpoints=endpoints, state_dir=state_dir, assigned_uid=assigned_uid
            )
        yield from _start(
            name, contract, root, port or free_port(), dict(overrides or {}), startup_timeout, health_path
        )
    finally:
        if keep_logs:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for f in root.glob("*.log"):
                shutil.copy(f, keep_logs / f.name)
        shutil.rmtree(root, ignore_errors=True)


BASELINE_ENV = {
    # A bare `pip install langflow && langflow run`: SQLite under the config dir, in-process cache, one worker.
    # Langflow 1.13 refuses to start with AUTO_LOGIN off and no superuser password, so the baseline sets one,
    # and the load test needs flows, so it loads the same flow files.
    "LANGFLOW_SUPERUSER": "langflow",
    # a bare install writes langflow.db into the (writable) package dir; the harness's venv is read-only,
    # so the same SQLite file goes to the config dir under HOME instead
    "LANGFLOW_SAVE_DB_IN_CONFIG_DIR": "true",
    "LANGFLOW_DO_NOT_TRACK": "true",
}


@contextlib.contextmanager
def baseline_process(
    *,
    flows_dir: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    port: int | None = None,
    startup_timeout: float = 240,
    keep_logs: Path | None = None,
    wait: bool = True,
) -> Iterator[LangflowProcess]:
    """Langflow with its own defaults (what a bare install gives), under bubblewrap as uid 1000 with a writable
    HOME and /tmp only: SQLite file, no external cache, `langflow run`. `wait=False` yields before it is healthy
    (call `wait_healthy()`), to start several processes concurrently."""
    root = Path(tempfile.mkdtemp(prefix="lfp-langflow-baseline-"))
    try:
        home = root / "home"
        tmp = root / "tmp"
        home.mkdir()
        tmp.mkdir()
        mounts = [Mount("/tmp", tmp, True, "emptyDir"), Mount(IMAGE_HOME, home, True, "emptyDir")]
        env = {**BASELINE_ENV, "LANGFLOW_SUPERUSER_PASSWORD": base64.b32encode(os.urandom(10)).decode().lower()}
        if flows_dir is not None:
            flows = root / "flows"
            shutil.copytree(flows_dir, flows)
            mounts.append(Mount("/app/flows", flows, False, "configMap"))
            env["LANGFLOW_LOAD_FLOWS_PATH"] = "/app/flows"
        env.update(overrides or {})
        fake = {"metadata": {"name": "baseline"}, "spec": {"template": {"spec": {"containers": []}}}}
        contract = PodContract(fake, {"name": "langflow"}, list(IMAGE_COMMAND), env, IMAGE_UID, IMAGE_GID, mounts)
        yield from _start(
            "baseline", contract, root, port or free_port(), {}, startup_timeout, "/health_check" if wait else None
        )
    finally:
        if keep_logs:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for f in root.glob("*.log"):
                shutil.copy(f, keep_logs / f.name)
        shutil.rmtree(root, ignore_errors=True)


def flow_files(manifest: Manifest, workload: str = "runtime") -> dict[str, str]:
    """The flow JSON files the workload mounts at LANGFLOW_LOAD_FLOWS_PATH (from its rendered ConfigMap)."""
    obj = find_workload(manifest, workload)
    c = find_container(obj)
    env = resolve_env(manifest, obj, c)
    flows_path = env.get("LANGFLOW_LOAD_FLOWS_PATH")
    if not flows_path:
        raise LangflowError(f"{obj['metadata']['name']}: LANGFLOW_LOAD_FLOWS_PATH is not set")
    volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"].get("volumes") or []}
    for vm in c.get("volumeMounts") or []:
        if vm["mountPath"].rstrip("/") == flows_path.rstrip("/") and "configMap" in volumes.get(vm["name"], {}):
            data = _lookup(manifest, "ConfigMap", volumes[vm["name"]]["configMap"]["name"]) or {}
            return {k: v for k, v in data.items() if k.endswith(".json")}
        if vm["mountPath"].rstrip("/") == flows_path.rstrip("/") and "emptyDir" in volumes.get(vm["name"], {}):
            # written by an initContainer (the runtime's fill-component-code): run it, read what it wrote
            root = Path(tempfile.mkdtemp(prefix="lfp-flow-files-"))
            try:
                run_init_containers(manifest, workload, root=root)
                return {p.name: p.read_text() for p in sorted((root / "volumes" / vm["name"]).glob("*.json"))}
            finally:
                shutil.rmtree(root, ignore_errors=True)
    raise LangflowError(f"{obj['metadata']['name']}: no ConfigMap or emptyDir volume mounted at {flows_path}")
