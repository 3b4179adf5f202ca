"""The promoted bundle: the one artefact through which the pipelines hand work to the trading runtime.

A small JSON manifest: which symbols to trade with which strategy and parameters, each risk profile's
sizing per symbol, the champion models by MLflow alias, and the data, feature and code versions it was
built from. The pipelines write `bundle-<version>.json` and then atomically replace `current.json`; the
runtime polls `current.json` and swaps a new version in between ticks. The version is a content hash,
so an unchanged bundle keeps its version and triggers nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xray_core.errors import DataError

CURRENT = "current.json"
VOLATILE = ("created_at", "dagster_run_id")  # not part of the content version


@dataclass(frozen=True)
class Bundle:
    exchange: str
    timeframe: str
    symbols: list[dict[str, Any]]  # symbol, strategy, params, group
    risk_profiles: dict[str, dict[str, dict[str, float]]]  # profile -> symbol -> sizing
    models: dict[str, dict[str, Any]]  # kind -> name, uri, version
    feature_version: str
    code_version: str
    data_versions: dict[str, str]
    dagster_run_id: str = ""
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def content(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in VOLATILE}

    @property
    def version(self) -> str:
        text = json.dumps(self.content(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def to_json(self) -> str:
        return json.dumps({"version": self.version, **self.__dict__}, indent=2, sort_keys=True, default=str)


def publish(bundle: Bundle, directory: Path) -> tuple[Path, bool]:
    """Write the bundle and point `current.json` at it; returns (path, whether current changed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bundle-{bundle.version}.json"
    current = directory / CURRENT
    if current.exists() and read(current).get("version") == bundle.version:
        return path, False
    for target in (path, current):
        partial = target.with_name(target.name + ".partial")
        partial.write_text(bundle.to_json())
        partial.replace(target)  # readers see the old file or the new one, never a torn one
    return path, True


def read(path: Path) -> dict[str, Any]:
    """A bundle file as a dict, with a clear error for a missing or corrupt one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(
            f"no promoted bundle at {path}", "run the pipeline (`make demo`) to publish one"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"promoted bundle {path} is not valid JSON ({exc.msg})", "publish it again") from None
    if not isinstance(data, dict) or "version" not in data or "symbols" not in data:
        raise DataError(f"promoted bundle {path} lacks version or symbols", "publish it again")
    return data
