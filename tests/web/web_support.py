"""Seed data the web tests share with their fixtures (conftest.py)."""

from __future__ import annotations

import numpy as np

# The shadow books: gbm v1 (champion) and v2 (challenger) on BTC and ETH for 48 bars; v2 long on
# every other bar, v1 always long. Returns as the runtime records them (net of costs).
SHADOW_BARS = 48


def shadow_rows(t0: int, hour: int, bundle_version: str) -> list[dict[str, object]]:
    rng = np.random.default_rng(11)
    rows: list[dict[str, object]] = []
    for version, role in ((1, "champion"), (2, "challenger")):
        for symbol in ("BTC/USDT", "ETH/USDT"):
            moves = rng.normal(0.0005, 0.01, SHADOW_BARS)
            for bar in range(SHADOW_BARS):
                position = 1.0 if version == 1 or bar % 2 == 0 else 0.0
                held = 0.0 if bar == 0 else (1.0 if version == 1 or (bar - 1) % 2 == 0 else 0.0)
                ret = held * moves[bar] - 0.0015 * abs(position - held)
                rows.append({"model": "xray-gbm", "version": version, "symbol": symbol,
                             "bar_ms": t0 + bar * hour, "role": role, "position": position,
                             "close": 100.0 * (1 + moves[: bar + 1]).prod(), "ret": float(ret),
                             "bundle_version": bundle_version, "recorded_ms": t0 + (bar + 1) * hour})
    return rows
