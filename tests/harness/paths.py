"""Where things are: the repository, its toolchain and its generated folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
UMBRELLA = CHARTS / "langflow-platform"
PROFILES_DIR = ROOT / "values"
TOOLS = ROOT / ".tools"
TOOLS_BIN = TOOLS / "bin"
REPORTS = ROOT / "reports"
BAD_VALUES = ROOT / "tests" / "bad-values"
COMPONENTS = ("ide", "runtime", "broker", "database", "vectorstore", "monitoring")


def profiles() -> list[str]:
    """Names of the ready profiles in values/ (dev, prod, aws, ...)."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def profile_file(name: str) -> Path:
    return PROFILES_DIR / f"{name}.yaml"


def tool(name: str) -> str:
    """Path of a toolchain binary: .tools/bin first, then PATH. Raises when neither has it."""
    candidate = TOOLS_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(f"{name} not found in {TOOLS_BIN} or on PATH: run `make tools`")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"
