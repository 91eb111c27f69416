"""Build the images the charts run, here: buildah 1.28 + an mmdebstrap rootfs, no registry, no Docker engine.

A recipe is a directory `images/<name>/` with `image.yaml` and a `Dockerfile` that starts with `ARG BASE` /
`FROM ${BASE}`. image.yaml keys:

- `refs`: references the image is tagged as, exactly as the charts name them (fallback for `refs_from`).
- `refs_from`: `<chart>:<values path>` entries (e.g. `langflow-runtime:worker.image`); the reference is composed
  from that {registry, repository, tag} block like `langflow-common.image` does (registry "" = docker.io), so the
  image and the chart never drift. When any entry resolves, `refs` is not used.
- `packages`: Debian packages of this image's base rootfs (mmdebstrap bookworm, variant minbase, `--include`),
  or `base: <other recipe>` (FROM that image of ours), or `base: scratch`.
- `build_args`: `--build-arg`s; `${KEY}` expands from tools/versions.env (so pins enter the hash).
- `pins`: further tools/versions.env keys the content depends on (hashed).
- `context`: build context relative to the repository (default: the recipe directory); the Dockerfile is the
  recipe's own when it has one, else the context's. `ignore`: context paths (fnmatch) left out of hash and copy.
- `pre_build`: a shell command run on the host in the (copied) context before `buildah bud` (e.g. gcc);
  `$LFP_ROOT` is the repository (e.g. to copy a binary `make tools` built).
- `mounts`: build-time bind mounts (RUN steps only, never in the image): `ca` (host CA bundle at
  /run/lfp/ca.crt, read-only; always offered), `uv` (the uv binary at /run/lfp/uv), `uv-cache` (the host's uv
  cache at /run/lfp/uv-cache).
- `verify`: commands run in the built image before it is published (`cmd`: argv list or a `sh -c` string;
  `user`; `read_only`: bubblewrap with a read-only root as a restricted pod; `tmpfs`: its emptyDirs, default
  [/tmp]).
- `expect_tag`: every ref must carry this tag (`${LANGFLOW_VERSION}`): a chart that moves to another version
  than the one built fails the build instead of mis-tagging it.
- `upstream`: one line "official ...; built here: ..." for the README table. `cold`: cold build estimate.

Each image's hash is a sha256 over its recipe (and context) files, resolved build args, pins, rootfs parameters
and the hash of its base. Output: `$LFP_CACHE/images/<name>-<hash12>.tar` (docker-archive, every ref in its
RepoTags); an existing archive is reused without running buildah. buildah's storage lives in
`$LFP_CACHE/buildah`; buildah runs in a private mount namespace with /var/lib read-only so its blob-info
cache (/var/lib/containers/cache) stays in memory instead of landing on the host.

Usage: python -m images.build [NAME ...] [--list] [--table] [--import-address SOCK --state-dir DIR] [--kind NAME]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

IMAGES_DIR = Path(__file__).resolve().parent
ROOT = IMAGES_DIR.parent
VERSIONS_ENV = ROOT / "tools" / "versions.env"
CHARTS_DIR = ROOT / "charts"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
FORMAT_VERSION = "lfp-images-v2"  # bump when the build procedure changes what lands in an image
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
# docs, man pages and translations stay out of the rootfs (copyright files stay in)
DPKG_OPTS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/info/*",
)
BUILD_PREFIX = "localhost/lfp-build"
NS_SCRIPT = "mount --bind /var/lib /var/lib && mount -o remount,bind,ro /var/lib"
ALWAYS_IGNORED = ("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "*.egg-info", ".mypy_cache")
HASH_IGNORED_KEYS = ("refs", "refs_from", "expect_tag", "upstream", "cold", "verify")

# timeouts (seconds) of each kind of subprocess: a stuck step fails instead of hanging
TIMEOUT_ROOTFS = 1200
TIMEOUT_BUD = 3600
TIMEOUT_PUSH = 1800
TIMEOUT_SHORT = 120
TIMEOUT_IMPORT = 1800

# how many times buildah was started in this process (tests assert a cache hit runs none)
BUILDAH_CALLS = 0


class BuildError(RuntimeError):
    """A build step failed; the message names the image, the step and the log file."""


@dataclass
class Built:
    name: str
    refs: list[str]
    archive: Path
    hash: str


@dataclass
class Recipe:
    name: str
    dir: Path
    refs: list[str]
    packages: list[str] = field(default_factory=list)
    base: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    pins: list[str] = field(default_factory=list)
    context: Path | None = None
    ignore: list[str] = field(default_factory=list)
    pre_build: str | None = None
    mounts: list[str] = field(default_factory=list)
    verify: list[dict[str, Any]] = field(default_factory=list)
    expect_tag: str = ""
    upstream: str = ""
    cold: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def context_dir(self) -> Path:
        return self.context or self.dir

    @property
    def dockerfile(self) -> Path:
        own = self.dir / "Dockerfile"
        return own if own.is_file() else self.context_dir / "Dockerfile"


# ---------------------------------------------------------------------------------------------------- paths


def cache_root() -> Path:
    """`${LFP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/langflow-platform}`, as tools/install.sh."""
    if os.environ.get("LFP_CACHE"):
        return Path(os.environ["LFP_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "langflow-platform"


def archives_dir() -> Path:
    return cache_root() / "images"


def logs_dir() -> Path:
    return archives_dir() / "logs"


def uv_cache_dir() -> Path:
    if os.environ.get("UV_CACHE_DIR"):
        return Path(os.environ["UV_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "uv"


def find_uv() -> Path:
    for cand in (ROOT / ".venv" / "bin" / "uv", shutil.which("uv")):
        if cand and Path(cand).is_file():
            return Path(cand).resolve()
    raise BuildError("images: the uv binary is needed (run `make tools`, which installs it into .venv/bin/uv)")


# ---------------------------------------------------------------------------------------------------- recipes


def load_versions(path: Path = VERSIONS_ENV) -> dict[str, str]:
    """KEY=VALUE lines of tools/versions.env (quotes stripped, comments ignored)."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def expand(value: str, versions: dict[str, str]) -> str:
    for key, val in versions.items():
        value = value.replace("${" + key + "}", val)
    if "${" in value:
        raise BuildError(f"images: unknown ${{...}} in {value!r} (keys come from tools/versions.env)")
    return value


def normalize_ref(ref: str) -> str:
    """A fully qualified reference as containerd names it (docker.io/library/x:tag for a bare x:tag)."""
    first, _, rest = ref.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        ref = "docker.io/" + ref
    host, _, path = ref.partition("/")
    if host == "docker.io" and "/" not in path:
        ref = f"docker.io/library/{path}"
    return ref


def chart_ref(spec: str, charts: Path = CHARTS_DIR) -> str:
    """`<chart>:<dotted values path>` -> the reference `langflow-common.image` renders from that image block."""
    chart, _, path = spec.partition(":")
    node: Any = yaml.safe_load((charts / chart / "values.yaml").read_text())
    for part in path.split("."):
        node = node[part]
    repo = str(node["repository"])
    tag = str(node.get("tag") or "")
    if not tag:
        raise BuildError(f"images: {spec} has no tag")
    registry = str(node.get("registry") or "") or "docker.io"
    ref = f"{registry}/{repo}:{tag}"
    if node.get("digest"):
        raise BuildError(f"images: {spec} pins a digest; an image built here cannot match it")
    return normalize_ref(ref)


def resolve_refs(raw: dict[str, Any], name: str, charts: Path = CHARTS_DIR) -> list[str]:
    refs: list[str] = []
    for spec in raw.get("refs_from") or []:
        try:
            refs.append(chart_ref(str(spec), charts))
        except (OSError, KeyError, TypeError) as exc:
            print(f"images: {name}: refs_from {spec} not found ({exc!r}); using refs", file=sys.stderr)
    if not refs:
        refs = [normalize_ref(str(r)) for r in raw.get("refs") or []]
    return list(dict.fromkeys(refs))


def load_recipes(recipes: Path = IMAGES_DIR) -> dict[str, Recipe]:
    out: dict[str, Recipe] = {}
    for path in sorted(recipes.glob("*/image.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        name = path.parent.name
        ctx = raw.get("context")
        out[name] = Recipe(
            name=name,
            dir=path.parent,
            refs=resolve_refs(raw, name),
            packages=[str(p) for p in raw.get("packages") or []],
            base=raw.get("base"),
            build_args={str(k): str(v) for k, v in (raw.get("build_args") or {}).items()},
            pins=[str(p) for p in raw.get("pins") or []],
            context=(ROOT / ctx).resolve() if ctx else None,
            ignore=[str(p) for p in raw.get("ignore") or []],
            pre_build=raw.get("pre_build"),
            mounts=[str(m) for m in raw.get("mounts") or []],
            verify=list(raw.get("verify") or []),
            expect_tag=str(raw.get("expect_tag") or ""),
            upstream=str(raw.get("upstream") or ""),
            cold=str(raw.get("cold") or ""),
            raw=raw,
        )
        if out[name].packages and out[name].base:
            raise BuildError(f"images: {name}: image.yaml has both packages and base")
        if not out[name].packages and not out[name].base:
            raise BuildError(f"images: {name}: image.yaml needs packages or base")
    return out


def order(names: Sequence[str] | None, recipes: dict[str, Recipe]) -> list[str]:
    """The requested images and their bases, bases first."""
    wanted = list(recipes) if names is None else list(names)
    out: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name not in recipes:
            raise BuildError(f"images: unknown image {name!r} (known: {', '.join(sorted(recipes))})")
        if name in stack:
            raise BuildError(f"images: base cycle {' -> '.join((*stack, name))}")
        base = recipes[name].base
        if base and base != "scratch":
            visit(base, (*stack, name))
        if name not in out:
            out.append(name)

    for n in wanted:
        visit(n, ())
    return out


def _ignored(rel: str, patterns: Sequence[str]) -> bool:
    parts = rel.split("/")
    for pat in (*ALWAYS_IGNORED, *patterns):
        if fnmatch.fnmatch(rel, pat) or any(fnmatch.fnmatch(p, pat) for p in parts):
            return True
    return False


def _files(top: Path, patterns: Sequence[str]) -> list[Path]:
    return sorted(p for p in top.rglob("*") if p.is_file() and not _ignored(p.relative_to(top).as_posix(), patterns))


def rootfs_params(recipe: Recipe) -> dict[str, Any]:
    return {
        "suite": SUITE,
        "variant": "minbase",
        "mirrors": list(MIRRORS),
        "dpkg": list(DPKG_OPTS),
        "packages": sorted(recipe.packages),
    }


def image_hash(name: str, recipes: dict[str, Recipe], versions: dict[str, str], memo: dict[str, str]) -> str:
    if name in memo:
        return memo[name]
    r = recipes[name]
    h = hashlib.sha256()

    def put(label: str, data: bytes) -> None:
        h.update(label.encode() + b"\0" + hashlib.sha256(data).digest())

    put("format", FORMAT_VERSION.encode())
    for p in _files(r.dir, r.ignore):
        rel = p.relative_to(r.dir).as_posix()
        if rel == "image.yaml":  # refs/upstream/verify do not change the content
            content = {k: v for k, v in r.raw.items() if k not in HASH_IGNORED_KEYS}
            put("recipe/image.yaml", json.dumps(content, sort_keys=True).encode())
        else:
            put("recipe/" + rel, p.read_bytes())
    if r.context and r.context != r.dir:
        for p in _files(r.context, r.ignore):
            put("context/" + p.relative_to(r.context).as_posix(), p.read_bytes())
    args = {k: expand(v, versions) for k, v in sorted(r.build_args.items())}
    put("build_args", json.dumps(args, sort_keys=True).encode())
    put("pins", json.dumps({k: versions.get(k, "") for k in sorted(r.pins)}).encode())
    if r.packages:
        put("rootfs", json.dumps(rootfs_params(r), sort_keys=True).encode())
    elif r.base == "scratch":
        put("base", b"scratch")
    else:
        put("base", image_hash(str(r.base), recipes, versions, memo).encode())
    memo[name] = h.hexdigest()
    return memo[name]


def hashes(recipes: Path = IMAGES_DIR) -> dict[str, str]:
    """The content hash of every recipe under `recipes`."""
    rs = load_recipes(recipes)
    versions = load_versions()
    memo: dict[str, str] = {}
    return {n: image_hash(n, rs, versions, memo) for n in rs}


# ---------------------------------------------------------------------------------------------------- processes


class Runner:
    """Runs the build's subprocesses with a timeout each, output appended to one log file per image."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        self.progress = progress
        self.t0 = time.monotonic()
        root = cache_root() / "buildah"
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.runroot = root / "run"
        self.private_ns = self._probe_private_ns()
        self.driver, self.storage = self._pick_driver(root)

    def say(self, msg: str) -> None:
        self.progress(f"images: [+{time.monotonic() - self.t0:.1f}s] {msg}")

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["TMPDIR"] = str(self.tmp)
        env.pop("BUILDAH_FORMAT", None)
        return env

    def ns_wrap(self, argv: Sequence[str]) -> list[str]:
        """argv in a private mount namespace with /var/lib read-only: buildah's blob-info cache
        (/var/lib/containers/cache) then falls back to memory and nothing lands on the host."""
        if not self.private_ns:
            return list(argv)
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", NS_SCRIPT + ' && exec "$@"', "sh", *argv]

    def buildah_base(self, driver: str | None = None, storage: Path | None = None) -> list[str]:
        return [
            "buildah",
            "--root",
            str(storage or self.storage),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            driver or self.driver,
        ]

    def buildah_argv(self, args: Sequence[str]) -> list[str]:
        return self.ns_wrap([*self.buildah_base(), *args])

    def _pick_driver(self, root: Path) -> tuple[str, Path]:
        choice = root / "driver"
        if choice.is_file():
            driver = choice.read_text().strip()
            return driver, root / f"storage-{driver}"
        for driver in ("overlay", "vfs"):
            storage = root / f"storage-{driver}"
            b = shlex.join(self.buildah_base(driver, storage))
            probe = f"c=$({b} from --pull=never scratch) && {b} mount $c >/dev/null && {b} rm $c"
            res = subprocess.run(
                self.ns_wrap(["sh", "-c", probe]), env=self.env(), capture_output=True, text=True, timeout=TIMEOUT_SHORT
            )
            if res.returncode == 0:
                choice.write_text(driver + "\n")
                return driver, storage
            self.say(f"storage driver {driver} does not work here: {res.stderr.strip()[-300:]}")
        raise BuildError("images: neither the overlay nor the vfs storage driver works for buildah here")

    def _probe_private_ns(self) -> bool:
        if not shutil.which("unshare") or os.geteuid() != 0:
            return False
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", NS_SCRIPT]
        res = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_SHORT)
        if res.returncode != 0:
            self.say("note: no private mount namespace here; buildah writes /var/lib/containers/cache")
        return res.returncode == 0

    def run(
        self,
        argv: Sequence[str],
        *,
        image: str,
        step: str,
        log: Path,
        timeout: float,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        capture: bool = True,
    ) -> str:
        """Run argv; stderr (and stdout unless captured) streams to `log`, captured stdout is returned and then
        appended to the log. Failure or timeout -> BuildError naming the image, the step and the log."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"\n$ {shlex.join(argv)}\n")
            fh.flush()
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env or self.env(),
                stdout=subprocess.PIPE if capture else fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                raise BuildError(f"images: {image}: step '{step}' timed out after {timeout:.0f}s; log: {log}") from None
            except BaseException:  # Ctrl-C: the step runs in its own session, so end it with us
                _kill_group(proc)
                raise
            fh.write(out or "")
        if proc.returncode != 0:
            tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
            raise BuildError(
                f"images: {image}: step '{step}' failed (exit {proc.returncode}); log: {log}\n--- log tail ---\n{tail}"
            )
        return out or ""

    def buildah(
        self,
        args: Sequence[str],
        *,
        image: str,
        step: str,
        log: Path,
        timeout: float = TIMEOUT_SHORT,
        capture: bool = True,
    ) -> str:
        global BUILDAH_CALLS
        BUILDAH_CALLS += 1
        return self.run(self.buildah_argv(args), image=image, step=step, log=log, timeout=timeout, capture=capture)

    def has_image(self, ref: str) -> bool:
        global BUILDAH_CALLS
        BUILDAH_CALLS += 1
        res = subprocess.run(
            self.buildah_argv(["inspect", "--type", "image", ref]),
            env=self.env(),
            capture_output=True,
            timeout=TIMEOUT_SHORT,
        )
        return res.returncode == 0


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the step's process group, SIGKILL it after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.communicate(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---------------------------------------------------------------------------------------------------- archives


def archive_path(name: str, digest: str) -> Path:
    return archives_dir() / f"{name}-{digest[:12]}.tar"


def read_archive_manifest(archive: Path) -> list[dict[str, Any]]:
    """The docker-archive's manifest.json (its RepoTags, Config and Layers)."""
    with tarfile.open(archive) as tf:
        fh = tf.extractfile("manifest.json")
        if fh is None:
            raise BuildError(f"images: {archive} has no manifest.json")
        return json.load(fh)


def read_archive_config(archive: Path) -> dict[str, Any]:
    """The image config JSON (User, Env, Cmd, ... under "config") of a single-image docker-archive."""
    with tarfile.open(archive) as tf:
        fh = tf.extractfile("manifest.json")
        assert fh is not None
        cfg = tf.extractfile(json.load(fh)[0]["Config"])
        assert cfg is not None
        return json.load(cfg)


def set_archive_tags(archive: Path, refs: Sequence[str]) -> None:
    """Make the archive's RepoTags exactly `refs`: rewrite manifest.json/repositories at the tar's tail."""
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        manifest_member = tf.getmember("manifest.json")
        fh = tf.extractfile(manifest_member)
        assert fh is not None
        manifest = json.load(fh)
    if len(manifest) != 1:
        raise BuildError(f"images: {archive} holds {len(manifest)} images, expected one")
    if manifest[0].get("RepoTags") == list(refs):
        return
    tail_names = {"manifest.json", "repositories"}
    idx = next(i for i, m in enumerate(members) if m.name in tail_names)
    if any(m.name not in tail_names for m in members[idx:]):
        raise BuildError(f"images: {archive}: manifest.json is not at the archive's end; cannot retag in place")
    manifest[0]["RepoTags"] = list(refs)
    layer_id = manifest[0]["Layers"][-1].split("/")[0].removesuffix(".tar")
    repositories: dict[str, dict[str, str]] = {}
    for ref in refs:
        repo, _, tag = ref.rpartition(":")
        repositories.setdefault(repo, {})[tag] = layer_id
    with archive.open("r+b") as raw:
        raw.truncate(members[idx].offset)
        raw.seek(members[idx].offset)
        for name, obj in (("manifest.json", manifest), ("repositories", repositories)):
            data = json.dumps(obj).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o444
            raw.write(info.tobuf(format=tarfile.GNU_FORMAT))
            raw.write(data + b"\0" * (-len(data) % tarfile.BLOCKSIZE))
        raw.write(b"\0" * (2 * tarfile.BLOCKSIZE))


def _copy_context(recipe: Recipe, dest: Path) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    src = recipe.context_dir
    for p in _files(src, recipe.ignore):
        target = dest / p.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, target)


def _mount_args(recipe: Recipe) -> list[str]:
    out: list[str] = []
    if HOST_CA_BUNDLE.is_file():
        out += ["--volume", f"{HOST_CA_BUNDLE}:/run/lfp/ca.crt:ro"]
    for m in recipe.mounts:
        if m == "ca":
            continue
        if m == "uv":
            out += ["--volume", f"{find_uv()}:/run/lfp/uv:ro"]
        elif m == "uv-cache":
            cache = uv_cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
            out += ["--volume", f"{cache}:/run/lfp/uv-cache"]
        else:
            raise BuildError(f"images: {recipe.name}: unknown mount {m!r} (ca, uv, uv-cache)")
    return out


def _make_rootfs(runner: Runner, recipe: Recipe, log: Path) -> str:
    """The mmdebstrap rootfs of `recipe` as an image in buildah's storage; its reference."""
    digest = hashlib.sha256(json.dumps(rootfs_params(recipe), sort_keys=True).encode()).hexdigest()
    ref = f"{BUILD_PREFIX}/{recipe.name}-rootfs:{digest[:12]}"
    if runner.has_image(ref):
        return ref
    tarball = runner.tmp / f"{recipe.name}-rootfs-{digest[:12]}.tar"
    runner.say(f"{recipe.name}: mmdebstrap {SUITE} minbase + {' '.join(recipe.packages)} (~30-80 s)")
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--include=" + ",".join(recipe.packages),
        "--skip=output/mknod",
        *(f"--dpkgopt={o}" for o in DPKG_OPTS),
        SUITE,
        str(tarball),
        *MIRRORS,
    ]
    try:
        runner.run(argv, image=recipe.name, step="mmdebstrap", log=log, timeout=TIMEOUT_ROOTFS, capture=False)
        runner.say(f"{recipe.name}: importing the rootfs into buildah")
        ctr = runner.buildah(["from", "--pull=never", "scratch"], image=recipe.name, step="rootfs from", log=log)
        ctr = ctr.strip().splitlines()[-1]
        try:
            runner.buildah(["add", ctr, str(tarball), "/"], image=recipe.name, step="rootfs add", log=log, timeout=600)
            runner.buildah(["config", "--cmd", "/bin/sh", ctr], image=recipe.name, step="rootfs config", log=log)
            runner.buildah(["commit", "-q", ctr, ref], image=recipe.name, step="rootfs commit", log=log, timeout=600)
        finally:
            with contextlib.suppress(BuildError):
                runner.buildah(["rm", ctr], image=recipe.name, step="rootfs rm", log=log)
    finally:
        tarball.unlink(missing_ok=True)
    _prune_storage(runner, f"{recipe.name}-rootfs", ref, log)  # the rootfs of an older package list
    return ref


def _ensure_in_storage(runner: Runner, built: Built, log: Path) -> str:
    """Our image `built` in buildah's storage (loaded from its archive when missing); its build reference."""
    ref = f"{BUILD_PREFIX}/{built.name}:{built.hash[:12]}"
    if runner.has_image(ref):
        return ref
    runner.say(f"{built.name}: loading {built.archive.name} into buildah's storage")
    out = runner.buildah(
        ["pull", "-q", f"docker-archive:{built.archive}"], image=built.name, step="load base", log=log, timeout=900
    )
    runner.buildah(["tag", out.strip().splitlines()[-1], ref], image=built.name, step="tag base", log=log)
    return ref


def _drop_mountpoints(runner: Runner, name: str, ref: str, log: Path) -> None:
    """buildah leaves the (empty) mountpoints of `bud --volume` in the image: remove /run/lfp in one small layer."""
    old = runner.buildah(["images", "-q", "--no-trunc", ref], image=name, step="cleanup id", log=log).split()
    out = runner.buildah(["from", "--pull=never", ref], image=name, step="cleanup from", log=log)
    ctr = shlex.quote(out.strip().splitlines()[-1])
    b = shlex.join(runner.buildah_base())
    script = (
        f'MNT=$({b} mount {ctr}) && if [ -e "$MNT/run/lfp" ]; then rm -rf "$MNT/run/lfp" && {b} umount {ctr} '
        f">/dev/null && {b} commit -q {ctr} {shlex.quote(ref)} >/dev/null; fi; rc=$?; {b} rm {ctr} >/dev/null; exit $rc"
    )
    global BUILDAH_CALLS
    BUILDAH_CALLS += 1
    runner.run(runner.ns_wrap(["sh", "-c", script]), image=name, step="drop build mountpoints", log=log, timeout=600)
    new = runner.buildah(["images", "-q", "--no-trunc", ref], image=name, step="cleanup id", log=log).split()
    if old and old != new:  # the pre-cleanup image is now untagged: drop its record (its layers stay shared)
        with contextlib.suppress(BuildError):
            runner.buildah(["rmi", old[0]], image=name, step="cleanup rmi", log=log)


def _verify(runner: Runner, recipe: Recipe, ref: str, log: Path) -> None:
    for check in recipe.verify:
        cmd = check["cmd"]
        argv = [str(c) for c in cmd] if isinstance(cmd, list) else ["sh", "-c", str(cmd)]
        user = str(check.get("user", "0:0"))
        runner.say(f"{recipe.name}: verify as {user}{' (read-only root)' if check.get('read_only') else ''}: {cmd}")
        tmpfs = [str(t) for t in check.get("tmpfs") or ["/tmp"]]
        run_in_image(runner, ref, argv, user=user, tmpfs=tmpfs, read_only=bool(check.get("read_only")),
                     image=recipe.name, log=log)  # fmt: skip


def run_in_image(
    runner: Runner,
    ref: str,
    argv: Sequence[str],
    *,
    user: str = "0:0",
    read_only: bool = False,
    tmpfs: Sequence[str] = ("/tmp",),
    image: str = "",
    log: Path | None = None,
    timeout: float = 600,
) -> str:
    """Run argv in a container of image `ref` and return its stdout: `buildah run`, or with read_only bubblewrap
    over the mounted image as a restricted pod runs it (read-only root, tmpfs /tmp, the image's Env and
    WorkingDir, uid:gid `user`, no network, an empty writable tmpfs at each of `tmpfs` like the pod's emptyDirs)."""
    image = image or ref
    log = log or logs_dir() / f"{image.replace('/', '_')}.log"
    out = runner.buildah(["from", "--pull=never", ref], image=image, step="verify from", log=log)
    name = out.strip().splitlines()[-1]
    try:
        if not (read_only and shutil.which("bwrap")):
            run = ["run", "--network", "none", "--user", user, name, "--", *argv]
            return runner.buildah(run, image=image, step="verify run", log=log, timeout=timeout)
        cfg = json.loads(runner.buildah(["inspect", "--type", "container", name], image=image, step="inspect", log=log))
        oci = cfg.get("OCIv1", {}).get("config", {})
        uid, _, gid = user.partition(":")
        bw = ["bwrap", "--ro-bind", "$MNT", "/", "--proc", "/proc", "--dev", "/dev"]
        for t in tmpfs:
            bw += ["--tmpfs", t]
        bw += ["--unshare-all", "--uid", uid, "--gid", gid or "0", "--die-with-parent", "--clearenv"]
        for kv in oci.get("Env") or []:
            k, _, v = kv.partition("=")
            bw += ["--setenv", k, v]
        bw += ["--chdir", oci.get("WorkingDir") or "/", *argv]
        b = shlex.join(runner.buildah_base())
        cmd = shlex.join(bw).replace("'$MNT'", '"$MNT"')
        ctr = shlex.quote(name)
        # mount and bwrap in one private mount namespace: the overlay mount exists only there
        script = f"MNT=$({b} mount {ctr}) && {cmd}; rc=$?; {b} umount {ctr} >/dev/null; exit $rc"
        global BUILDAH_CALLS
        BUILDAH_CALLS += 1
        argv2 = runner.ns_wrap(["sh", "-c", script])
        return runner.run(argv2, image=image, step="verify run", log=log, timeout=timeout)
    finally:
        with contextlib.suppress(BuildError):
            runner.buildah(["rm", name], image=image, step="verify rm", log=log)


def _build_one(runner: Runner, recipe: Recipe, digest: str, built: dict[str, Built], versions: dict[str, str]) -> None:
    log = logs_dir() / f"{recipe.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {recipe.name} {digest} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
    runner.say(f"building {recipe.name}" + (f" (cold: {recipe.cold})" if recipe.cold else "") + f"; log: {log}")
    t = time.monotonic()
    if recipe.packages:
        base_ref = _make_rootfs(runner, recipe, log)
    elif recipe.base == "scratch":
        base_ref = "scratch"
    else:
        base_ref = _ensure_in_storage(runner, built[str(recipe.base)], log)
    work = cache_root() / "images" / "work" / recipe.name
    _copy_context(recipe, work)
    if recipe.pre_build:
        runner.say(f"{recipe.name}: pre_build: {recipe.pre_build}")
        runner.run(
            ["sh", "-c", recipe.pre_build],
            image=recipe.name,
            step="pre_build",
            log=log,
            timeout=600,
            env={**runner.env(), "LFP_ROOT": str(ROOT)},
            cwd=work,
            capture=False,
        )
    ref = f"{BUILD_PREFIX}/{recipe.name}:{digest[:12]}"
    args = ["bud", "--pull=never", "--network", "host", "--layers=false", "--force-rm", "-f", str(recipe.dockerfile)]
    args += ["--build-arg", f"BASE={base_ref}", "--label", f"org.langflow-platform.image-hash={digest}"]
    for k, v in sorted(recipe.build_args.items()):
        args += ["--build-arg", f"{k}={expand(v, versions)}"]
    args += [*_mount_args(recipe), "-t", ref, str(work)]
    runner.say(f"{recipe.name}: buildah bud FROM {base_ref}")
    runner.buildah(args, image=recipe.name, step="buildah bud", log=log, timeout=TIMEOUT_BUD, capture=False)
    shutil.rmtree(work, ignore_errors=True)
    _drop_mountpoints(runner, recipe.name, ref, log)
    if recipe.verify:
        _verify(runner, recipe, ref, log)
    archive = archive_path(recipe.name, digest)
    tmp = archive.with_suffix(".tar.tmp")
    tmp.unlink(missing_ok=True)
    runner.say(f"{recipe.name}: exporting {archive.name} (docker-archive)")
    first = recipe.refs[0] if recipe.refs else ref
    runner.buildah(["push", "-q", ref, f"docker-archive:{tmp}:{first}"], image=recipe.name, step="push archive",
                   log=log, timeout=TIMEOUT_PUSH)  # fmt: skip
    set_archive_tags(tmp, recipe.refs or [ref])
    tmp.rename(archive)
    for old in archives_dir().glob(f"{recipe.name}-*.tar"):  # older builds of this image
        if old != archive and re.fullmatch(re.escape(recipe.name) + r"-[0-9a-f]{12}\.tar", old.name):
            old.unlink(missing_ok=True)
    _prune_storage(runner, recipe.name, ref, log)
    size = archive.stat().st_size / 1e6
    runner.say(f"{recipe.name}: built in {time.monotonic() - t:.1f}s, {size:.0f} MB -> {archive}")
    built[recipe.name] = Built(recipe.name, list(recipe.refs), archive, digest)


def _prune_storage(runner: Runner, name: str, keep: str, log: Path) -> None:
    """Drop older builds of `name` from buildah's storage (a Langflow build is ~2.5 GB)."""
    out = runner.buildah(["images", "--format", "{{.Name}}:{{.Tag}}", "--noheading"], image=name, step="images",
                         log=log)  # fmt: skip
    for line in out.split():
        if line.startswith(f"{BUILD_PREFIX}/{name}:") and line != keep:
            with contextlib.suppress(BuildError):
                runner.buildah(["rmi", line], image=name, step="prune", log=log)


@contextlib.contextmanager
def _lock(name: str, progress: Callable[[str], None], timeout: float = TIMEOUT_BUD + TIMEOUT_PUSH) -> Iterator[None]:
    path = archives_dir() / "locks" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    progress(f"images: {name}: another build of it is running; waiting for it ({path})")
                    waited = True
                if time.monotonic() > deadline:
                    raise BuildError(f"images: {name}: lock {path} still held after {timeout:.0f}s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(
    names: Sequence[str] | None = None,
    progress: Callable[[str], None] = print,
    recipes: Path = IMAGES_DIR,
) -> list[Built]:
    """Build (or reuse from the cache) the named images (None = all), bases first. Returns the requested images
    (with names=None: every image) in build order."""
    rs = load_recipes(recipes)
    versions = load_versions()
    memo: dict[str, str] = {}
    todo = order(names, rs)
    print_lock = threading.Lock()
    say_progress = progress

    def progress(msg: str) -> None:  # one line at a time from the parallel builds
        with print_lock:
            say_progress(msg)

    wanted = set(todo if names is None else names)
    archives_dir().mkdir(parents=True, exist_ok=True)
    built: dict[str, Built] = {}
    t0 = time.monotonic()
    runners: list[Runner] = []  # one, made on the first real build (a cache hit runs no buildah at all)
    runner_lock = threading.Lock()
    for name in todo:  # hashes first (cheap, and a bad pin fails before anything builds)
        recipe = rs[name]
        image_hash(name, rs, versions, memo)
        if recipe.expect_tag:
            want = expand(recipe.expect_tag, versions)
            wrong = [r for r in recipe.refs if r.rpartition(":")[2] != want]
            if wrong:
                raise BuildError(f"images: {name}: builds version {want} but would be tagged {', '.join(wrong)}")

    def one(name: str) -> None:
        recipe = rs[name]
        digest = image_hash(name, rs, versions, memo)
        archive = archive_path(name, digest)
        with _lock(name, progress):  # another `make images` building the same image: wait, then reuse it
            if archive.is_file():
                set_archive_tags(archive, recipe.refs or [f"{BUILD_PREFIX}/{name}:{digest[:12]}"])
                built[name] = Built(name, list(recipe.refs), archive, digest)
                progress(f"images: [+{time.monotonic() - t0:.1f}s] {name}: cached {archive}")
                return
            with runner_lock:
                if not runners:
                    runners.append(Runner(progress))
                    runners[0].t0 = t0
            _build_one(runners[0], recipe, digest, built, versions)

    # independent images build side by side (LFP_IMAGE_JOBS, default 2): an image starts once its base is built
    jobs = max(1, int(os.environ.get("LFP_IMAGE_JOBS", "2")))
    pending, running = list(todo), {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        while pending or running:
            for name in list(pending):
                base = rs[name].base
                if len(running) < jobs and (not base or base == "scratch" or base in built):
                    pending.remove(name)
                    running[pool.submit(one, name)] = name
            if not running:
                raise BuildError(f"images: cannot order {pending} (a base failed?)")
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                running.pop(fut)
                exc = fut.exception()
                if exc is not None:
                    for other in running:
                        other.cancel()
                    raise exc
    return [built[n] for n in todo if n in wanted]


# ---------------------------------------------------------------------------------------------------- import


def _checked(argv: Sequence[str], timeout: float, what: str = "images") -> str:
    """Run argv; its stdout, or BuildError naming `what` and the command on failure or timeout."""
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: `{shlex.join(argv)}` timed out after {timeout:.0f}s") from None
    if res.returncode != 0:
        raise BuildError(f"{what}: `{shlex.join(argv)}` failed (exit {res.returncode}): {res.stderr.strip()}")
    return res.stdout


def _ctr(address: str, *args: str, timeout: float = TIMEOUT_SHORT) -> str:
    return _checked(["ctr", "-a", address, "-n", "k8s.io", *args], timeout)


def import_into_containerd(
    built: Sequence[Built],
    address: str,
    state_dir: Path,
    progress: Callable[[str], None] = print,
    snapshotter: str = "overlayfs",
) -> None:
    """Import each archive into containerd's k8s.io namespace (unpacked for `snapshotter`) and make sure every ref
    exists. An image whose hash is recorded in state_dir/imported.json and whose refs are all present is skipped."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_file = state_dir / "imported.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.is_file() else {}
    t0 = time.monotonic()
    for b in built:
        if not b.refs:
            continue
        present = set(_ctr(address, "images", "ls", "-q").split())
        if state.get(b.name, {}).get("hash") == b.hash and all(r in present for r in b.refs):
            progress(f"images: [+{time.monotonic() - t0:.1f}s] {b.name}: already in containerd")
            continue
        progress(f"images: [+{time.monotonic() - t0:.1f}s] {b.name}: ctr images import {b.archive.name}")
        _ctr(address, "images", "import", "--snapshotter", snapshotter, str(b.archive), timeout=TIMEOUT_IMPORT)
        present = set(_ctr(address, "images", "ls", "-q").split())
        have = [r for r in b.refs if r in present]
        if not have:
            raise BuildError(f"images: {b.name}: none of {b.refs} is in containerd after importing {b.archive}")
        for ref in b.refs:
            if ref not in present:
                _ctr(address, "images", "tag", "--force", have[0], ref)
        state[b.name] = {"hash": b.hash, "refs": b.refs, "archive": str(b.archive)}
        state_file.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        progress(f"images: [+{time.monotonic() - t0:.1f}s] {b.name}: imported as {', '.join(b.refs)}")


def kind_load(built: Sequence[Built], cluster_name: str) -> None:
    """`kind load image-archive` each archive into a kind cluster (for users with Docker)."""
    for b in built:
        if not b.refs:
            continue
        argv = ["kind", "load", "image-archive", str(b.archive), "--name", cluster_name]
        _checked(argv, TIMEOUT_IMPORT, f"images: {b.name}")


# ---------------------------------------------------------------------------------------------------- CLI


def table(recipes: Path = IMAGES_DIR) -> str:
    """Markdown: image ref, what is built here, what upstream ships."""
    lines = ["| image | built here | upstream |", "|---|---|---|"]
    for name, r in load_recipes(recipes).items():
        official, _, here = r.upstream.partition("; built here:")
        refs = "<br>".join(f"`{ref}`" for ref in r.refs) or f"`{BUILD_PREFIX}/{name}` (internal)"
        lines.append(f"| {refs} | {here.strip() or '-'} | {official.strip() or '-'} |")
    return "\n".join(lines)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except BuildError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(1) from None


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m images.build", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="images to build (default: all), bases are built first")
    p.add_argument("--list", action="store_true", help="list the recipes, hashes, refs and whether cached")
    p.add_argument("--table", action="store_true", help="print the markdown table: built here vs upstream")
    p.add_argument("--import-address", metavar="SOCK", help="containerd socket to import the images into")
    p.add_argument("--state-dir", metavar="DIR", type=Path, help="where imported.json is kept (with --import-address)")
    p.add_argument("--kind", metavar="CLUSTER", help="kind load image-archive into this kind cluster")
    a = p.parse_args(argv)
    with _errors():
        if a.table:
            print(table())
            return
        if a.list:
            rs = load_recipes()
            for name, digest in hashes().items():
                cached = "cached" if archive_path(name, digest).is_file() else "not built"
                print(f"{name:18} {digest[:12]}  {cached:9}  {' '.join(rs[name].refs) or '(internal)'}")
            return
        if a.import_address and not a.state_dir:
            p.error("--import-address needs --state-dir")
        done = build(a.names or None)
        if a.import_address:
            import_into_containerd(done, a.import_address, a.state_dir)
        if a.kind:
            kind_load(done, a.kind)


if __name__ == "__main__":
    main()
