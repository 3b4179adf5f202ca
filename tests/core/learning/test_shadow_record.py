"""The shadow record as series: per (model, version, symbol) returns in bar order, a bar recorded twice
counted once, and a challenger paired with the champion on the bars both books recorded."""

import numpy as np
import polars as pl
import pytest

from xray_core.errors import DataError
from xray_core.learning.shadow_record import (
    SHADOW_SCHEMA,
    book_summary,
    model_summary,
    paired_returns,
    shadow_returns,
)

T0, BAR = 1_780_000_000_000, 3_600_000


def _rows(model: str, version: int, symbol: str, bars: range, rets: list[float], role: str = "challenger"):
    return pl.DataFrame({
        "bar": pl.Series([T0 + b * BAR for b in bars]).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
        "model": model, "version": version, "symbol": symbol, "role": role,
        "position": [1.0 if r else 0.0 for r in rets], "close": 100.0, "ret": rets, "bundle_version": "b1",
    }, schema=SHADOW_SCHEMA)


def test_rows_become_one_series_per_book_in_bar_order():
    rows = pl.concat([
        _rows("xray-gbm", 7, "ETH/USDT", range(4, 6), [0.03, -0.01]),
        _rows("xray-gbm", 7, "ETH/USDT", range(0, 5), [0.0, 0.01, 0.0, -0.02, 0.03]),  # bar 4 again
        _rows("xray-gbm", 3, "ETH/USDT", range(0, 3), [0.0, 0.0, 0.01], role="champion"),
    ])
    books = shadow_returns(rows)
    assert list(books) == [("xray-gbm", 3, "ETH/USDT"), ("xray-gbm", 7, "ETH/USDT")]
    mine = books[("xray-gbm", 7, "ETH/USDT")]
    assert mine.bar_ms.tolist() == [T0 + b * BAR for b in range(6)]  # sorted, bar 4 once
    assert mine.ret.tolist() == [0.0, 0.01, 0.0, -0.02, 0.03, -0.01]
    assert set(shadow_returns(rows, min_bars=4)) == {("xray-gbm", 7, "ETH/USDT")}
    summary = book_summary(rows).filter(pl.col("version") == 7).row(0, named=True)
    assert summary["bars"] == 6 and summary["bars_long"] == 4
    assert summary["net_return"] == pytest.approx(1.01 * 0.98 * 1.03 * 0.99 - 1)


def test_a_challenger_is_paired_with_the_champion_on_common_bars_per_symbol():
    rows = pl.concat([
        _rows("xray-gbm", 7, "BTC/USDT", range(2, 8), [0.01 * k for k in range(6)]),
        _rows("xray-gbm", 3, "BTC/USDT", range(0, 6), [-0.01 * k for k in range(6)], role="champion"),
        _rows("xray-gbm", 7, "SOL/USDT", range(0, 3), [0.01, 0.02, 0.03]),  # the champion has no SOL book
    ])
    paired = paired_returns(rows, challenger=("xray-gbm", 7), champion=("xray-gbm", 3))
    assert list(paired) == ["BTC/USDT"]
    btc = paired["BTC/USDT"]
    assert btc.bar_ms.tolist() == [T0 + b * BAR for b in range(2, 6)]
    assert np.allclose(btc.challenger, [0.0, 0.01, 0.02, 0.03])
    assert np.allclose(btc.champion, [-0.02, -0.03, -0.04, -0.05])
    assert paired_returns(rows, ("xray-gbm", 7), ("xray-gbm", 3), min_bars=5) == {}


def test_rows_without_returns_are_a_clear_error():
    with pytest.raises(DataError, match="ret"):
        shadow_returns(pl.DataFrame({"bar": [], "model": [], "version": [], "symbol": [], "position": []}))


def test_a_models_record_is_its_books_equal_weighted_per_bar():
    rows = pl.concat([
        _rows("xray-gbm", 7, "BTC/USDT", range(0, 3), [0.02, 0.0, -0.01]),
        _rows("xray-gbm", 7, "ETH/USDT", range(1, 4), [0.04, 0.01, 0.03]),
        _rows("xray-gbm", 7, "ETH/USDT", range(3, 4), [0.03]),  # bar 3 again: counted once
        _rows("xray-gbm", 3, "BTC/USDT", range(0, 2), [0.0, 0.0], role="champion"),
    ])
    summary = model_summary(rows, bars_per_year=8760.0)
    assert summary["version"].to_list() == [3, 7]
    flat, mine = summary.row(0, named=True), summary.row(1, named=True)
    assert (flat["bars"], flat["bars_long"], flat["sharpe"], flat["net_return"]) == (2, 0, 0.0, 0.0)
    assert (mine["books"], mine["bars"], mine["book_bars"], mine["bars_long"]) == (2, 4, 6, 5)
    per_bar = np.array([0.02, 0.02, 0.0, 0.03])  # bar 1: (0.0 + 0.04) / 2; bar 2: (-0.01 + 0.01) / 2
    assert mine["net_return"] == pytest.approx(np.prod(1 + per_bar) - 1)
    assert mine["sharpe"] == pytest.approx(per_bar.mean() / per_bar.std(ddof=1) * np.sqrt(8760))
