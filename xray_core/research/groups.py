"""Which symbols share one optimised parameter set: the kept symbols of one correlation cluster.

Optimising per cluster rather than per symbol pools several symbols' history behind each parameter
set (less overfitting to one chart), and costs one study per cluster. A kept symbol without a cluster
(too little overlapping history) gets a group of its own.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True, slots=True)
class ParamGroup:
    name: str  # "cluster-3" or "solo-BTC_USDT"
    symbols: tuple[str, ...]
    strategy: str  # the strategy most of its symbols do best with by default


def group_symbols(filtered: pl.DataFrame, clusters: pl.DataFrame) -> list[ParamGroup]:
    """Groups of kept symbols (`filtered`: symbol, kept, best_strategy, sharpe; `clusters`: symbol,
    cluster), each with the strategy most of its members are best with (ties: higher mean Sharpe)."""
    kept = filtered.filter(pl.col("kept")) if filtered.height else filtered
    cluster_of = dict(zip(clusters["symbol"], clusters["cluster"], strict=True)) if clusters.height else {}
    members: dict[str, list[dict[str, object]]] = {}
    for row in kept.iter_rows(named=True):
        cluster = cluster_of.get(row["symbol"])
        name = f"cluster-{cluster}" if cluster is not None else f"solo-{row['symbol'].replace('/', '_')}"
        members.setdefault(name, []).append(row)
    return [
        ParamGroup(name, tuple(sorted(str(r["symbol"]) for r in rows)), _majority_strategy(rows))
        for name, rows in sorted(members.items())
    ]


def study_name(exchange: str, timeframe: str, group: ParamGroup, data_versions: dict[str, str]) -> str:
    """Stable while the group's data is unchanged (an interrupted study resumes); new data, new study."""
    digest = hashlib.sha256("|".join(f"{s}={data_versions[s]}" for s in group.symbols).encode()).hexdigest()
    return f"{exchange}-{timeframe}-{group.strategy}-{group.name}-{digest[:10]}"


def _majority_strategy(rows: list[dict[str, object]]) -> str:
    votes = Counter(str(r["best_strategy"]) for r in rows)
    sharpe: dict[str, list[float]] = {}
    for r in rows:
        sharpe.setdefault(str(r["best_strategy"]), []).append(float(r["sharpe"] or 0.0))  # type: ignore[arg-type]
    return max(votes, key=lambda s: (votes[s], sum(sharpe[s]) / len(sharpe[s])))
