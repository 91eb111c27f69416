"""A CNCF distribution (OCI) registry on loopback, built from its Go module by `make tools`."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from .paths import tool
from .servers import Process, ServerError, free_port, spawn, wait_for


@dataclass
class Registry:
    port: int
    process: Process

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def oci(self, path: str = "charts") -> str:
        return f"oci://{self.host}/{path}"

    def catalog(self) -> list[str]:
        r = requests.get(f"http://{self.host}/v2/_catalog", timeout=10)
        r.raise_for_status()
        return list(r.json().get("repositories", []))


@contextlib.contextmanager
def registry() -> Iterator[Registry]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lfp-registry-") as tmp:
        base = Path(tmp)
        config = base / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
        )
        proc = spawn("registry", [tool("registry"), "serve", str(config)], base / "registry.log")
        reg = Registry(port, proc)
        try:
            try:
                wait_for(
                    lambda: proc.ensure_alive() and requests.get(f"http://{reg.host}/v2/", timeout=2).ok,
                    30,
                    "the OCI registry",
                )
            except (TimeoutError, ServerError) as exc:
                raise ServerError(f"{exc}\n{proc.tail()}") from exc
            yield reg
        finally:
            proc.stop()
