#!/usr/bin/env python3
"""Generate local kubeconform schemas: built-in kinds from Kubernetes' OpenAPI v2, CRD kinds from CRD files.

kubeconform looks schemas up by path templates. This writes:

- ``<out>/<version>-standalone-strict/<kind>-<group>-<apiversion>.json`` (and the non-strict twin
  ``<version>-standalone/``) for every kind in the swagger's definitions, named as kubeconform's
  ``{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json``
  expects: ``deployment-apps-v1.json``, ``service-v1.json``, ``ingress-networking-v1.json``;
- ``<out>/<group>/<kind>_<version>.json`` for every version of every CRD under ``--crds``
  (``{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json``), strict.

"Strict" means what kubeconform's -strict promises: an object schema that lists its properties rejects
any other property (``additionalProperties: false``), unless it already says what extra properties may be
or the CRD marks it ``x-kubernetes-preserve-unknown-fields``. Optional fields accept ``null`` (the API
server treats a null optional field as unset). Each file is standalone: the definitions a kind reaches
are copied into its ``definitions`` block, so recursive types (JSONSchemaProps) stay finite.

Usage: gen_schemas.py --openapi swagger.json --crds DIR --out DIR [--kubernetes-version v1.34.4]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Schema = dict[str, Any]
REF_PREFIX = "#/definitions/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def allow_null(schema: Schema) -> Schema:
    """The same schema, also accepting null."""
    if "$ref" in schema:
        return {"anyOf": [{"$ref": schema["$ref"]}, {"type": "null"}]}
    out = dict(schema)
    if "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        if "null" not in types:
            out["type"] = [*types, "null"]
    elif "anyOf" in out:
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def strictify(node: Any, *, strict: bool, crd: bool) -> Any:
    """Walk a schema; close objects that list properties, let optional fields be null, fix special types."""
    if isinstance(node, list):
        return [strictify(n, strict=strict, crd=crd) for n in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key in ("properties", "definitions", "patternProperties"):
            out[key] = {k: strictify(v, strict=strict, crd=crd) for k, v in value.items()}
        elif key in ("description", "enum", "default", "example", "required"):
            out[key] = value
        else:
            out[key] = strictify(value, strict=strict, crd=crd)
    if out.get("format") == "int-or-string" or out.get("x-kubernetes-int-or-string"):
        out.pop("format", None)
        if "anyOf" not in out and "oneOf" not in out:
            out["type"] = ["integer", "string"]
    if "properties" in out:
        required = set(out.get("required", []))
        out["properties"] = {
            name: (prop if name in required else allow_null(prop)) for name, prop in out["properties"].items()
        }
        preserve = bool(out.get("x-kubernetes-preserve-unknown-fields"))
        if strict and "additionalProperties" not in out and not preserve:
            out["additionalProperties"] = False
    if crd and out.get("nullable"):
        out = allow_null(out)
    return out


def refs_of(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            yield ref[len(REF_PREFIX) :]
        for v in node.values():
            yield from refs_of(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs_of(v)


def reachable(root: str, definitions: dict[str, Schema]) -> list[str]:
    seen: list[str] = []
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in definitions:
            raise KeyError(f"swagger: $ref to unknown definition {name}")
        seen.append(name)
        stack.extend(r for r in refs_of(definitions[name]) if r not in seen)
    return seen


def special_types(definitions: dict[str, Schema]) -> dict[str, Schema]:
    """Types whose JSON form is not what their swagger 'type' says (they marshal either way)."""
    defs = dict(definitions)
    if INT_OR_STRING in defs:
        defs[INT_OR_STRING] = {"description": defs[INT_OR_STRING].get("description", ""), "type": ["integer", "string"]}
    if QUANTITY in defs:
        defs[QUANTITY] = {
            "description": "Quantity: a number or a string such as 500m, 1Gi",
            "type": ["number", "string"],
        }
    return defs


def kind_suffix(group: str, version: str) -> str:
    """kubeconform's KindSuffix: '-<first label of the group>-<version>' ('-v1' for the core group)."""
    return f"-{group.split('.')[0].lower()}-{version.lower()}" if group else f"-{version.lower()}"


def builtin_schemas(swagger: dict[str, Any], *, strict: bool) -> dict[str, Schema]:
    """File name -> schema for every group/version/kind the swagger defines."""
    definitions = special_types(swagger["definitions"])
    files: dict[str, Schema] = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            group, version, kind = gvk.get("group", ""), gvk["version"], gvk["kind"]
            api_version = f"{group}/{version}" if group else version
            root = strictify(copy.deepcopy(definition), strict=strict, crd=False)
            props = root.setdefault("properties", {})
            # kubeconform picks this file by kind and apiVersion; the enums say so inside the schema too
            props["apiVersion"] = {**props.get("apiVersion", {}), "type": "string", "enum": [api_version]}
            props["kind"] = {**props.get("kind", {}), "type": "string", "enum": [kind]}
            deps = [d for d in reachable(name, definitions) if d != name]
            if deps:
                root["definitions"] = {
                    d: strictify(copy.deepcopy(definitions[d]), strict=strict, crd=False) for d in deps
                }
                if name in set(refs_of(root)):  # a kind that refers to itself
                    root["definitions"][name] = strictify(copy.deepcopy(definition), strict=strict, crd=False)
            files[f"{kind.lower()}{kind_suffix(group, version)}.json"] = root
    return files


class _CrdLoader(yaml.SafeLoader):
    """PyYAML reads a bare '=' (an enum value in some CRDs) as YAML 1.1's 'value' tag; it is a string."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def crd_documents(crd_dir: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(crd_dir.rglob("*.y*ml")):
        with path.open() as f:
            for doc in yaml.load_all(f, Loader=_CrdLoader):
                if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                    yield path, doc


OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def object_meta(swagger: dict[str, Any]) -> Schema:
    """ObjectMeta with the definitions it reaches, strict: a custom resource's metadata is checked as strictly
    as a built-in kind's (a CRD's own schema says only `metadata: {type: object}`)."""
    definitions = special_types(swagger["definitions"])
    return {
        d: strictify(copy.deepcopy(definitions[d]), strict=True, crd=False) for d in reachable(OBJECT_META, definitions)
    }


def crd_schemas(crd_dir: Path, meta_definitions: dict[str, Schema] | None = None) -> dict[str, Schema]:
    """'<group>/<kind>_<version>.json' -> strict schema, for every version of every CRD with a schema."""
    files: dict[str, Schema] = {}
    for path, doc in crd_documents(crd_dir):
        spec = doc["spec"]
        group, kind = spec["group"], spec["names"]["kind"]
        for version in spec.get("versions", []):
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or None
            if schema is None:
                print(f"gen_schemas: {path.name}: {kind} {version['name']} has no schema, skipped", file=sys.stderr)
                continue
            root = strictify(copy.deepcopy(schema), strict=True, crd=True)
            props = root.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            if meta_definitions:
                props["metadata"] = {"$ref": REF_PREFIX + OBJECT_META}
                root["definitions"] = meta_definitions
            else:
                props.setdefault("metadata", {"type": "object"})
            root.setdefault("type", "object")
            if not root.get("x-kubernetes-preserve-unknown-fields"):
                root["additionalProperties"] = False
            files[f"{group}/{kind.lower()}_{version['name']}.json"] = root
    return files


def crd_api_versions(schema: Schema) -> list[str]:
    api_version = schema["properties"]["apiVersion"]["enum"][0]
    return [api_version, f"{api_version}/{schema['properties']['kind']['enum'][0]}"]


def write(out: Path, files: dict[str, Schema]) -> None:
    for rel, schema in files.items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--openapi", type=Path, required=True, help="Kubernetes api/openapi-spec/swagger.json")
    parser.add_argument("--crds", type=Path, required=True, help="folder of CRD YAML files (searched recursively)")
    parser.add_argument("--out", type=Path, required=True, help="schema folder to write")
    parser.add_argument(
        "--kubernetes-version",
        default="master",
        help="version folder name, as kubeconform's -kubernetes-version (v1.34.4 or master)",
    )
    args = parser.parse_args(argv)
    version = args.kubernetes_version
    if version != "master" and not version.startswith("v"):
        version = f"v{version}"
    swagger = json.loads(args.openapi.read_text())
    counts = {}
    for strict, folder in ((True, f"{version}-standalone-strict"), (False, f"{version}-standalone")):
        files = builtin_schemas(swagger, strict=strict)
        write(args.out / folder, files)
        counts[folder] = len(files)
    crds = crd_schemas(args.crds, object_meta(swagger))
    write(args.out, crds)
    # the CRD API versions, for `helm template --api-versions` (group/version and group/version/Kind)
    api_versions = sorted({v for _, s in crds.items() for v in crd_api_versions(s)})
    (args.out / "crd-api-versions.txt").write_text("\n".join(api_versions) + "\n")
    counts["crd kinds"] = len(crds)
    print("gen_schemas: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0 if crds and all(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
