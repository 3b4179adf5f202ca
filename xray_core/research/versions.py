"""Code versions: a hash of the source of the packages a result depends on.

A cached result is reused only when its data version and this code version are unchanged, so editing
a strategy, an indicator or the engine invalidates exactly the results they produced."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import import_module
from pathlib import Path


@cache
def code_version(*packages: str) -> str:
    """12 hex digits over every .py file of `packages` (module names), in a stable order."""
    digest = hashlib.sha256()
    for package in sorted(packages):
        root = Path(import_module(package).__file__ or "").parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


BACKTEST_CODE = ("xray_core.backtest", "xray_core.indicators", "xray_core.strategies")


def backtest_code_version() -> str:
    return code_version(*BACKTEST_CODE)
