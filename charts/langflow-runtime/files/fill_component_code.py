"""Fill the component code of code-less Langflow flow files from the Langflow installed alongside.

Why: a Langflow flow export embeds the full source of every built-in component it uses
(`data.nodes[].data.node.template.code.value`). This repository commits flows with those values emptied
(upstream code is not committed here); the runtime pod's initContainer runs this script with the Langflow image's
own Python before Langflow starts, so Langflow loads flows whose code is exactly what the installed version would
put into a fresh export.

How: the component registry is built by Langflow's own loader (`lfx.interface.components.
import_langflow_components`, the built-in component index Langflow loads at start) and flattened with the aliases
Langflow resolves node types by (`lfx.utils.component_aliases.flatten_components_with_aliases`, as
`update_projects_components_with_latest_component_versions` does). For every node whose `template.code.value` is
empty, the registry entry of the node's `data.type` gives `template.code.value`. Nodes that already carry code (a
custom component in `flows.extra`, or a full export) are left untouched.

Custom components: when LANGFLOW_COMPONENTS_PATH is set (the chart's `components`, mounted in this
initContainer too), the components under it are loaded the way Langflow loads them at start
(`lfx.interface.components.aget_all_types_dict`) and added to the registry, so a flow may name a custom component
by type and get the code the pod ships.

Fails loudly: exit status 1 and a message naming the flow file and node type when a code-less node's type is not
in the registry (extension-bundle components are not in the built-in index: keep their code in the flow). Every
other key of a flow is copied unchanged.

Reuse: with `--cache DIR` (the pod's cache volume) the filled files are also kept in DIR/<key>/, the key being a
SHA-256 of the installed Langflow and lfx versions, this script and every source file. A later start with the same
key (a restarted pod keeps its volume) copies them instead of building the registry, which costs seconds of CPU.
The key covers the custom components' files too.
Older keys are removed when a new one is written.

Usage: python fill_component_code.py [--cache DIR] SRC_DIR [SRC_DIR ...] DEST_DIR   (every SRC_DIR/*.json goes to
DEST_DIR/; a file that is not a flow, or a name given by two sources, fails the start naming it)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any


def custom_paths() -> list[Path]:
    """The folders of LANGFLOW_COMPONENTS_PATH (one path, or several separated by commas, as Langflow reads it)."""
    value = os.environ.get("LANGFLOW_COMPONENTS_PATH", "")
    return [Path(p.strip()) for p in value.split(",") if p.strip()]


def component_registry() -> dict[str, Any]:
    """Langflow's built-in components by node type (and alias), as Langflow builds them at start, with the custom
    components of LANGFLOW_COMPONENTS_PATH over them."""
    from lfx.interface.components import aget_all_types_dict, import_langflow_components
    from lfx.utils.component_aliases import flatten_components_with_aliases

    loaded = asyncio.run(import_langflow_components())
    registry = flatten_components_with_aliases(loaded["components"])
    paths = [str(p) for p in custom_paths() if p.is_dir()]
    if paths:
        custom = asyncio.run(aget_all_types_dict(paths))
        registry.update(flatten_components_with_aliases(custom))
        print(f"custom components from {', '.join(paths)}: {sum(len(v) for v in custom.values())}")
    return registry


def registry_entry(registry: dict[str, Any], node_type: str) -> Any:
    """The registry's entry for `node_type`; a flow built in the IDE names an extension component by its namespaced
    id `ext:<bundle>:<Class>@<slot>` (Langflow 1.13's palette key), which resolves to the class as Langflow's
    loader does."""
    if node_type in registry or not node_type.startswith("ext:"):
        return registry.get(node_type)
    return registry.get(node_type.rpartition(":")[2].partition("@")[0])


def fill_flow(flow: dict[str, Any], registry: dict[str, Any]) -> tuple[int, list[str]]:
    """Fill the empty code fields of `flow` in place; returns (fields filled, node types not in the registry)."""
    filled, unknown = 0, []
    for node in flow.get("data", {}).get("nodes", []):
        data = node.get("data") or {}
        code = ((data.get("node") or {}).get("template") or {}).get("code")
        if not isinstance(code, dict) or code.get("value"):
            continue
        node_type = data.get("type")
        entry = registry_entry(registry, node_type) if isinstance(node_type, str) else None
        value = ((entry or {}).get("template") or {}).get("code", {}).get("value")
        if not value:
            unknown.append(f"{node_type} (node {node.get('id')})")
            continue
        code["value"] = value
        filled += 1
    return filled, unknown


def cache_key(files: list[Path]) -> str:
    """What the filled files depend on: the installed Langflow and lfx, this script, the source flows and the
    custom components."""
    h = hashlib.sha256()
    for dist in ("langflow", "lfx"):
        try:
            h.update(f"{dist}={metadata.version(dist)}\n".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=absent\n".encode())
    h.update(Path(__file__).read_bytes())
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    for root in custom_paths():
        # a ConfigMap volume also holds its files under timestamped `..<date>` folders: only the visible ones count
        for f in sorted(root.rglob("*.py")):
            rel = f.relative_to(root)
            if f.is_file() and not any(part.startswith("..") for part in rel.parts):
                h.update(str(rel).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def reuse(cache: Path, key: str, names: list[str], dest: Path) -> bool:
    """Copy the kept files of `key` to `dest` when every one of `names` is there."""
    kept = cache / key
    if not all((kept / n).is_file() for n in names):
        return False
    for n in names:
        shutil.copyfile(kept / n, dest / n)
    return True


def keep(cache: Path, key: str, names: list[str], dest: Path) -> None:
    """Store the filled files under `key` (written aside, then renamed: a killed start leaves no half entry);
    entries of other keys go."""
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".filling-", dir=cache))
    for n in names:
        shutil.copyfile(dest / n, tmp / n)
    shutil.rmtree(cache / key, ignore_errors=True)
    tmp.rename(cache / key)
    for old in cache.iterdir():
        if old.name != key:
            shutil.rmtree(old, ignore_errors=True)


def load_flow(path: Path) -> dict[str, Any]:
    """One flow file, or ValueError saying why it is not one."""
    try:
        flow = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not JSON ({exc})") from exc
    if not isinstance(flow, dict) or not isinstance((flow.get("data") or {}).get("nodes"), list):
        raise ValueError("not a Langflow flow (no data.nodes)")
    return flow


def main(argv: list[str]) -> int:
    cache = None
    if argv[:1] == ["--cache"] and len(argv) >= 2:
        cache, argv = Path(argv[1]), argv[2:]
    if len(argv) < 2:
        print("usage: fill_component_code.py [--cache DIR] SRC_DIR [SRC_DIR ...] DEST_DIR", file=sys.stderr)
        return 2
    sources, dest = [Path(a) for a in argv[:-1]], Path(argv[-1])
    files = sorted((f for src in sources for f in src.glob("*.json")), key=lambda f: f.name)
    names = [f.name for f in files]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        where = {n: [str(f.parent) for f in files if f.name == n] for n in twice}
        print(f"fill_component_code: flow file names given twice: {where}", file=sys.stderr)
        return 1
    key = cache_key(files) if cache is not None else ""
    if cache is not None and reuse(cache, key, names, dest):
        print(f"reused {len(names)} filled flow file(s) from {cache / key} (same Langflow, script and flows)")
        return 0
    registry = component_registry()
    failures = []
    for path in files:
        try:
            flow = load_flow(path)
        except ValueError as exc:
            failures.append(f"{path}: {exc}")
            continue
        filled, unknown = fill_flow(flow, registry)
        if unknown:
            failures.append(f"{path.name}: no Langflow component for node type {', '.join(unknown)}")
            continue
        (dest / path.name).write_text(json.dumps(flow, ensure_ascii=False))
        print(f"{path.name}: filled the code of {filled} node(s)")
    for failure in failures:
        print(f"fill_component_code: {failure}", file=sys.stderr)
    if failures:
        return 1
    if cache is not None:
        keep(cache, key, names, dest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
