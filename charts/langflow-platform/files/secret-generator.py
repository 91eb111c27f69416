"""The secret generator: create the release's generated Secrets in the cluster, once, from their specs.

Run by the umbrella's pre-install/pre-upgrade hook Job (and by the test harness with --offline). Each component
chart renders, instead of a Secret, a ConfigMap labelled langflow-platform.dev/secret-spec=<release> whose key
spec.json names the Secret and its keys: {"key", "length"} random alphanumeric, {"key", "value"} fixed, {"key",
"template"} text in which @@other-key@@ stands for another key's value. For each spec:

- the Secret is missing: it is created with every key;
- it exists: keys it lacks are added; a stored random or fixed value never changes. Template keys (URLs, the
  broker's definitions) are derived: they are filled from the values the Secret holds each time, so a chart version
  that adds a user or changes a URL updates them, from the same passwords (as the charts' helm mode does).

Standard library only (the Job runs in the worker image); talks to the API server with the pod's ServiceAccount.
Usage: secret-generator.py [--offline SPEC.json ...]   (offline: print the Secrets as a JSON list, touch nothing;
with SEED set, values derive from it, so the same specs always give the same Secrets)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import string
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

SA = "/var/run/secrets/kubernetes.io/serviceaccount"
ALPHABET = string.ascii_letters + string.digits
MANAGED_BY = "langflow-platform.dev/generated-by"


def random_value(length: int, seed: str = "", label: str = "") -> str:
    """`length` random alphanumerics; with a seed (offline, for tests) derived from it and `label` instead."""
    if not seed:
        return "".join(secrets.choice(ALPHABET) for _ in range(length))
    out, counter = "", 0
    while len(out) < length:
        digest = hashlib.sha256(f"{seed}:{label}:{counter}".encode()).digest()
        out += "".join(ALPHABET[b % len(ALPHABET)] for b in digest)
        counter += 1
    return out[:length]


def generate(spec: dict[str, Any], have: dict[str, str], seed: str = "") -> dict[str, str]:
    """The keys to write, given the values the Secret holds (plain text, not base64): those it lacks, and the
    template keys whose text, filled from the held and new values, differs from what it holds."""
    values = dict(have)
    for k in spec["keys"]:
        if k["key"] in values or "template" in k:
            continue
        if "value" in k:
            values[k["key"]] = str(k["value"])
        elif "length" in k:
            values[k["key"]] = random_value(int(k["length"]), seed, f"{spec['name']}/{k['key']}")
        else:
            raise ValueError(f"secret {spec['name']}: key {k['key']!r} has neither length, value nor template")
    plain = dict(values)  # templates refer to random and fixed keys only
    for k in spec["keys"]:
        if "template" in k:
            text = k["template"]
            for name, value in plain.items():
                text = text.replace(f"@@{name}@@", value)
            values[k["key"]] = text
    return {k: v for k, v in values.items() if have.get(k) != v}


def encoded(data: dict[str, str]) -> dict[str, str]:
    """A Secret's `data`: every value base64-encoded."""
    return {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}


def secret_object(spec: dict[str, Any], namespace: str, data: dict[str, str]) -> dict[str, Any]:
    labels = {**spec.get("labels", {}), MANAGED_BY: "secret-generator"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": spec.get("type", "Opaque"),
        "metadata": {"name": spec["name"], "namespace": namespace, "labels": labels},
        "data": encoded(data),
    }


class Api:
    """The few API server calls the generator makes, with the pod's token and CA."""

    def __init__(self) -> None:
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        self.base = f"https://{host if ':' not in host else f'[{host}]'}:{port}"
        with open(f"{SA}/token") as f:
            self.token = f.read().strip()
        self.tls = ssl.create_default_context(cafile=f"{SA}/ca.crt")

    def call(self, method: str, path: str, body: Any = None, content: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content)
        with urllib.request.urlopen(req, context=self.tls, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")


def reconcile(api: Api, namespace: str, spec: dict[str, Any]) -> str:
    path = f"/api/v1/namespaces/{namespace}/secrets"
    name = spec["name"]
    try:
        have_b64 = api.call("GET", f"{path}/{name}").get("data") or {}
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        data = generate(spec, {})
        try:
            api.call("POST", path, secret_object(spec, namespace, data))
            return f"created Secret {name} (keys {', '.join(sorted(data))})"
        except urllib.error.HTTPError as race:
            if race.code != 409:  # made meanwhile by another run: fill in what it lacks below
                raise
            have_b64 = api.call("GET", f"{path}/{name}").get("data") or {}
    have = {k: base64.b64decode(v).decode() for k, v in have_b64.items()}
    changes = generate(spec, have)
    if not changes:
        return f"kept Secret {name} (every key present; nothing changed)"
    api.call("PATCH", f"{path}/{name}", {"data": encoded(changes)}, "application/merge-patch+json")
    added = sorted(k for k in changes if k not in have)
    derived = sorted(k for k in changes if k in have)
    what = "; ".join(
        part
        for part in (
            f"added keys {', '.join(added)}" if added else "",
            f"re-derived keys {', '.join(derived)} from the stored values" if derived else "",
        )
        if part
    )
    return f"{what} in Secret {name} (the stored passwords kept)"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--offline"]:
        specs = []
        for path in argv[1:]:
            with open(path) as f:
                specs.append(json.load(f))
        namespace, seed = os.environ.get("NAMESPACE", "default"), os.environ.get("SEED", "")
        print(json.dumps([secret_object(s, namespace, generate(s, {}, seed)) for s in specs], indent=1))
        return 0
    namespace = os.environ["NAMESPACE"]
    selector = os.environ["SPEC_SELECTOR"]
    api = Api()
    query = urllib.parse.urlencode({"labelSelector": selector})
    specs = api.call("GET", f"/api/v1/namespaces/{namespace}/configmaps?{query}").get("items") or []
    if not specs:  # they are made before this Job (hook weight -20, or earlier in a `kubectl apply`): retry
        print(f"ERROR: no ConfigMap labelled {selector} in namespace {namespace} yet", file=sys.stderr)
        return 1
    for cm in sorted(specs, key=lambda c: c["metadata"]["name"]):
        try:
            spec = json.loads((cm.get("data") or {})["spec.json"])
            print(reconcile(api, namespace, spec), flush=True)
        except (KeyError, ValueError) as exc:
            print(f"ERROR: ConfigMap {cm['metadata']['name']}: not a secret spec ({exc})", file=sys.stderr)
            return 1
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            print(f"ERROR: ConfigMap {cm['metadata']['name']}: API server said {exc.code}: {detail}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
