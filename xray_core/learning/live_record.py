"""A champion's live record: the bars it has traded (or would have) since its labels end, as positions.

The decay check asks whether a champion still earns, after training, what its out-of-sample
evaluation promised. Only bars whose labels were not in its training data count: its training rows
end at `trained_until`, and the label of that last row looks `horizon` bars ahead, so the first honest
bar opens after `trained_until + horizon` bars (`fresh_after_ms`). The record is counted per symbol,
so one busy symbol cannot stand in for the others.

Where the runtime traded the champion (fills whose order's lineage names this model version), its
positions are what it actually held: from the symbol's first such decision on, long after a buy fill
and flat after a sell fill, per decision bar. This is the live part — it includes every bar the risk
layer, an outage or a rejected order changed. Elsewhere (before the runtime traded it, or on symbols it
never traded) the model's own positions are replayed on the candles. Both are returned as P(up) of 1
(long) or 0 (flat) per bar, to be priced by `evaluate_oos` at the research costs the gate used, so the
live number and the promised one are measured the same way; fill prices are not used here (execution
quality is a separate question from whether the signal still has an edge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import polars as pl

# The model's P(up) for the given bars of each symbol ({symbol: bar open times in ms}), in that order.
Replay = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
LIVE, REPLAYED = "live", "replayed"


def fresh_after_ms(trained_until_ms: int, horizon_bars: int, bar_ms: int) -> int:
    """Bars opening after this instant have labels the model never saw."""
    return trained_until_ms + horizon_bars * bar_ms


def fresh_bars(candles: Mapping[str, pl.DataFrame], after_ms: int) -> dict[str, int]:
    """How many bars of each symbol open after `after_ms`."""
    return {
        symbol: frame.filter(pl.col("timestamp").dt.epoch("ms") > after_ms).height
        for symbol, frame in candles.items()
    }


def live_positions(fills: pl.DataFrame, stamps_ms: np.ndarray) -> np.ndarray:
    """Per bar of `stamps_ms` (sorted): 1 long, 0 flat, -1 not yet traded live. `fills` are one symbol's
    fills of one model version, with `bar` (the decision bar), `timestamp` and `side`."""
    out = np.full(stamps_ms.size, -1, dtype=np.int8)
    if fills.is_empty():
        return out
    ordered = fills.with_columns(pl.coalesce("bar", "timestamp").dt.epoch("ms").alias("_bar")).sort(
        "_bar", "timestamp"
    )
    bars = ordered["_bar"].to_numpy()
    long = (ordered["side"] == "buy").to_numpy()
    last = np.searchsorted(bars, stamps_ms, side="right") - 1  # the newest decision at or before the bar
    known = last >= 0
    out[known] = long[last[known]].astype(np.int8)
    return out


def champion_record(
    candles: Mapping[str, pl.DataFrame],
    fills: pl.DataFrame,
    after_ms: int,
    replay: Replay,
) -> pl.DataFrame:
    """(timestamp, symbol, p_up, source) for every bar of `candles` opening after `after_ms`: live
    positions where the champion's `fills` cover the bar, else `replay({symbol: stamps_ms})`'s P(up)
    for the bars left (called once, with only the bars that need it)."""
    parts, needed, live = [], {}, {}
    for symbol, frame in candles.items():
        stamps = frame["timestamp"].dt.epoch("ms").to_numpy()
        stamps = stamps[stamps > after_ms]
        if not stamps.size:
            continue
        positions = live_positions(fills.filter(pl.col("symbol") == symbol), stamps)
        live[symbol] = (stamps, positions)
        if (positions < 0).any():
            needed[symbol] = stamps[positions < 0]
    replayed = replay(needed) if needed else {}
    for symbol, (stamps, positions) in live.items():
        p_up = positions.astype(np.float64)
        source = np.where(positions >= 0, LIVE, REPLAYED)
        if symbol in needed:
            p_up[positions < 0] = replayed[symbol]
        parts.append(pl.DataFrame({
            "timestamp": pl.Series(stamps).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "symbol": symbol, "p_up": p_up, "source": source,
        }))
    if not parts:
        return pl.DataFrame(schema={"timestamp": pl.Datetime("ms", "UTC"), "symbol": pl.String,
                                    "p_up": pl.Float64, "source": pl.String})
    return pl.concat(parts).sort("symbol", "timestamp")
