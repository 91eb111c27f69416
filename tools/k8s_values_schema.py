#!/usr/bin/env python3
"""Copy the Kubernetes definitions that the charts' values schemas refer to into those schemas.

A chart's values.schema.json refers to a Kubernetes type as ``{"$ref": "#/definitions/io.k8s.api.core.v1.Volume"}``
(extension points: extraVolumes, sidecars, extraEnvVarsFrom, ...). Helm validates each chart's schema on its own,
offline, so the definitions must live in the file. This tool writes, into each schema's ``definitions``, every
``io.k8s.*`` definition reachable from those references, taken from the Kubernetes module's OpenAPI (the same
swagger.json the kubeconform schemas come from), strict as kubeconform's: objects that list their properties
reject others, so a misspelt field fails the render with its key named. Descriptions are dropped (size).

Usage: k8s_values_schema.py --openapi swagger.json [--check] charts/*/values.schema.json
(--check: change nothing, exit 1 and name the files whose definitions are not what the OpenAPI gives)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_schemas import REF_PREFIX, reachable, refs_of, special_types, strictify

K8S = "io.k8s."


def without_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: without_descriptions(v)
            for k, v in node.items()
            if k
            not in (
                "description",
                "x-kubernetes-list-map-keys",
                "x-kubernetes-list-type",
                "x-kubernetes-patch-merge-key",
                "x-kubernetes-patch-strategy",
                "x-kubernetes-map-type",
                "x-kubernetes-unions",
            )
        }
    if isinstance(node, list):
        return [without_descriptions(v) for v in node]
    return node


def with_definitions(schema: dict[str, Any], definitions: dict[str, Any]) -> dict[str, Any]:
    """`schema` with exactly the io.k8s.* definitions its own parts reach."""
    own = {k: v for k, v in (schema.get("definitions") or {}).items() if not k.startswith(K8S)}
    body = {**schema, "definitions": own}
    roots = sorted({r for r in refs_of(body) if r.startswith(K8S)})
    needed: set[str] = set()
    for root in roots:
        needed.update(reachable(root, definitions))
    out = dict(schema)
    out["definitions"] = {**own, **{name: definitions[name] for name in sorted(needed)}}
    if not out["definitions"]:
        out.pop("definitions")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--openapi", required=True, type=Path)
    ap.add_argument("--check", action="store_true")
    ap.add_argument("schemas", nargs="+", type=Path)
    args = ap.parse_args(argv)
    swagger = json.loads(args.openapi.read_text())
    definitions = special_types(swagger["definitions"])
    definitions = {k: without_descriptions(strictify(v, strict=True, crd=False)) for k, v in definitions.items()}
    stale = []
    for path in args.schemas:
        before = path.read_text()
        after = json.dumps(with_definitions(json.loads(before), definitions), indent=2) + "\n"
        if after != before:
            stale.append(str(path))
            if not args.check:
                path.write_text(after)
    if args.check and stale:
        print("Kubernetes definitions out of date (run `make schemas`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    assert REF_PREFIX == "#/definitions/"
    sys.exit(main())
