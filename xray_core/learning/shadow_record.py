"""The shadow record: each model's live out-of-sample returns, bar by bar, as the runtime's shadow
books recorded them (the journal's `shadow_bars`, snapshot by the `shadow_records` asset).

The runtime evaluates every challenger (and, for the pairing, every champion) on the same closed bars
it trades, keeps a paper book per (model, version, symbol) and records each bar's position and the
book's return net of the research costs. Nothing here prices anything again: the rows already hold
returns at the costs the gate uses. This module only turns rows into series:

* `shadow_returns`: per (model, version, symbol), the bars in time order with their net returns
  (a bar recorded twice — two runtime processes, a restart — counts once);
* `paired_returns`: a challenger's and a champion's returns on the bars both books recorded, per
  symbol, so a paired test compares the two models on exactly the same market.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from xray_core.errors import DataError
from xray_core.learning.skill import sharpe

_UTC_MS = pl.Datetime("ms", "UTC")
# One row per (model, version, symbol, bar); `bar` is the closed bar's open time.
SHADOW_SCHEMA: dict[str, pl.DataType] = {
    "bar": _UTC_MS,
    "model": pl.String(),
    "version": pl.Int64(),
    "symbol": pl.String(),
    "role": pl.String(),
    "position": pl.Float64(),
    "close": pl.Float64(),
    "ret": pl.Float64(),
    "bundle_version": pl.String(),
}
Key = tuple[str, int, str]  # model name, version, symbol


@dataclass(frozen=True)
class ReturnSeries:
    """One book's bars (open times, ms, increasing) and its net return over each."""

    bar_ms: np.ndarray
    ret: np.ndarray

    def __len__(self) -> int:
        return int(self.bar_ms.size)


@dataclass(frozen=True)
class PairedReturns:
    """Two books' net returns on the bars both recorded (open times, ms, increasing)."""

    bar_ms: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray


def empty_shadow() -> pl.DataFrame:
    return pl.DataFrame(schema=SHADOW_SCHEMA)


def shadow_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The journal's `shadow_bars` rows (dicts with `bar_ms`) as SHADOW_SCHEMA."""
    if not rows:
        return empty_shadow()
    frame = pl.DataFrame(rows).with_columns(pl.col("bar_ms").cast(pl.Int64).cast(_UTC_MS).alias("bar"))
    return frame.select(pl.col(name).cast(dtype) for name, dtype in SHADOW_SCHEMA.items())


def shadow_returns(rows: pl.DataFrame, min_bars: int = 1) -> dict[Key, ReturnSeries]:
    """Per (model, version, symbol) with at least `min_bars` bars, its net returns in bar order."""
    _check(rows)
    out: dict[Key, ReturnSeries] = {}
    unique = rows.unique(subset=["model", "version", "symbol", "bar"], keep="first", maintain_order=True)
    for (model, version, symbol), part in unique.sort("bar").group_by(
            "model", "version", "symbol", maintain_order=True):
        if part.height < min_bars:
            continue
        stamps = part["bar"].dt.epoch("ms").to_numpy().astype(np.int64)
        out[(str(model), int(version), str(symbol))] = ReturnSeries(stamps, part["ret"].to_numpy())
    return dict(sorted(out.items()))


def paired_returns(rows: pl.DataFrame, challenger: tuple[str, int], champion: tuple[str, int],
                   min_bars: int = 1) -> dict[str, PairedReturns]:
    """Per symbol both books recorded on at least `min_bars` common bars: their returns on those bars."""
    series = shadow_returns(rows)
    paired: dict[str, PairedReturns] = {}
    symbols = {key[2] for key in series if key[:2] == challenger}
    for symbol in sorted(symbols):
        mine, theirs = series[(*challenger, symbol)], series.get((*champion, symbol))
        if theirs is None:
            continue
        common, i, j = np.intersect1d(mine.bar_ms, theirs.bar_ms, assume_unique=True, return_indices=True)
        if common.size >= min_bars:
            paired[symbol] = PairedReturns(common, mine.ret[i], theirs.ret[j])
    return paired


def book_summary(rows: pl.DataFrame) -> pl.DataFrame:
    """Per (model, version, symbol): bars recorded, first and last bar, bars held long, compounded net
    return — what the UI shows of the shadow books."""
    _check(rows)
    return (
        rows.unique(subset=["model", "version", "symbol", "bar"], keep="first")
        .group_by("model", "version", "symbol")
        .agg(
            pl.len().alias("bars"),
            pl.col("bar").min().alias("first_bar"),
            pl.col("bar").max().alias("last_bar"),
            (pl.col("position") > 0).sum().alias("bars_long"),
            ((pl.col("ret") + 1.0).product() - 1.0).alias("net_return"),
        )
        .sort("model", "version", "symbol")
    )


def model_summary(rows: pl.DataFrame, bars_per_year: float) -> pl.DataFrame:
    """Per (model, version): its shadow record over all its books, as the gate pairs them — each bar's
    return is the mean over the symbols it recorded that bar (an equal-weighted portfolio of its
    books). Columns: role (the latest recorded), books, bars (distinct bars), book_bars, bars_long
    (book-bars held long), first_bar, last_bar, net_return (that portfolio compounded) and sharpe
    (annualised by `bars_per_year`; 0 for a record that never moved)."""
    _check(rows)
    unique = rows.unique(subset=["model", "version", "symbol", "bar"], keep="first")
    portfolio = unique.group_by("model", "version", "bar").agg(pl.col("ret").mean()).sort("bar")
    records = []
    for (model, version), part in portfolio.group_by("model", "version", maintain_order=True):
        ret = part["ret"].to_numpy()
        records.append({"model": str(model), "version": int(version),
                        "net_return": float(np.prod(1.0 + ret) - 1.0),
                        "sharpe": sharpe(ret, bars_per_year)})
    books = (
        unique.sort("bar").group_by("model", "version")
        .agg(pl.col("role").last(), pl.col("symbol").n_unique().alias("books"),
             pl.col("bar").n_unique().alias("bars"), pl.len().alias("book_bars"),
             (pl.col("position") > 0).sum().alias("bars_long"), pl.col("bar").min().alias("first_bar"),
             pl.col("bar").max().alias("last_bar"))
    )
    scores = pl.DataFrame(records, schema={"model": pl.String(), "version": pl.Int64(),
                                           "net_return": pl.Float64(), "sharpe": pl.Float64()})
    return books.join(scores, on=["model", "version"], how="left").sort("model", "version")


def _check(rows: pl.DataFrame) -> None:
    needed = ("bar", "model", "version", "symbol", "ret", "position")
    missing = [name for name in needed if name not in rows.columns]
    if missing:
        raise DataError(f"shadow rows lack {', '.join(missing)}",
                        "read them with the journal resource (`shadow_records`)")
