"""The champion's live record: which bars count, and positions from fills or from the replayed model."""

import numpy as np
import polars as pl

from xray_core.learning.live_record import (
    LIVE,
    REPLAYED,
    champion_record,
    fresh_after_ms,
    fresh_bars,
    live_positions,
)

H = 3_600_000
UTC_MS = pl.Datetime("ms", "UTC")


def _candles(n: int) -> pl.DataFrame:
    stamps = pl.Series(np.arange(n, dtype=np.int64) * H).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    return pl.DataFrame({"timestamp": stamps, "close": np.ones(n)})


def _fills(rows: list[tuple[str, int, str]]) -> pl.DataFrame:
    """(symbol, decision bar index, side)."""
    return pl.DataFrame(
        {"symbol": [r[0] for r in rows], "bar": [r[1] * H for r in rows],
         "timestamp": [r[1] * H + H + 1 for r in rows], "side": [r[2] for r in rows]},
        schema={"symbol": pl.String, "bar": pl.Int64, "timestamp": pl.Int64, "side": pl.String},
    ).with_columns(pl.col("bar", "timestamp").cast(UTC_MS))


def test_only_bars_after_trained_until_plus_horizon_count_per_symbol():
    after = fresh_after_ms(10 * H, 5, H)
    assert after == 15 * H
    assert fresh_bars({"A": _candles(20), "B": _candles(17)}, after) == {"A": 4, "B": 1}


def test_positions_follow_the_last_decision_at_or_before_each_bar():
    fills = _fills([("A", 3, "buy"), ("A", 6, "sell"), ("A", 8, "buy")])
    positions = live_positions(fills, np.arange(10, dtype=np.int64) * H)
    assert positions.tolist() == [-1, -1, -1, 1, 1, 1, 0, 0, 1, 1]  # -1: not traded live yet


def test_the_record_replays_only_the_bars_the_runtime_did_not_trade():
    asked = {}

    def replay(needed):
        asked.update({s: (stamps // H).tolist() for s, stamps in needed.items()})
        return {s: np.full(stamps.size, 0.9) for s, stamps in needed.items()}

    candles = {"A": _candles(12), "B": _candles(12)}
    record = champion_record(candles, _fills([("A", 8, "buy"), ("A", 10, "sell")]), 6 * H, replay)
    assert asked == {"A": [7], "B": [7, 8, 9, 10, 11]}
    a = record.filter(pl.col("symbol") == "A")
    assert a["p_up"].to_list() == [0.9, 1.0, 1.0, 0.0, 0.0]
    assert a["source"].to_list() == [REPLAYED, LIVE, LIVE, LIVE, LIVE]
    assert set(record.filter(pl.col("symbol") == "B")["source"]) == {REPLAYED}


def test_a_fully_live_record_never_loads_the_model():
    def replay(needed):
        raise AssertionError("the model was asked for bars the runtime traded")

    record = champion_record({"A": _candles(6)}, _fills([("A", 1, "buy")]), 2 * H, replay)
    assert record["p_up"].to_list() == [1.0, 1.0, 1.0]
