"""Research core: cached default backtests, filtering with reasons, symbol groups, derived tables."""

import polars as pl
import pytest

from xray_core.backtest import BacktestConfig
from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.research.backtests import BacktestRun, backtest_all, best_per_symbol
from xray_core.research.filtering import Thresholds, filter_symbols
from xray_core.research.groups import group_symbols, study_name
from xray_core.research.store import ResearchStore
from xray_core.strategies import RULE_STRATEGIES, STRATEGIES

CONFIG = BacktestConfig(fee=0.001, slippage=0.0005)
STRATS = [STRATEGIES[name] for name in RULE_STRATEGIES]


@pytest.fixture(scope="module")
def runs(candles_dir) -> list[BacktestRun]:
    files = {"BTC/USDT": "BTC_USDT-5m", "ETH/BTC": "ETH_BTC-5m", "LTC/BTC": "LTC_BTC-5m"}
    return [
        BacktestRun(symbol, Bars.from_frame(read_parquet(candles_dir / f"{name}.parquet")), f"v-{symbol}")
        for symbol, name in files.items()
    ]


def test_every_symbol_gets_every_strategy_and_the_cache_is_reused(runs):
    first = backtest_all(runs, STRATS, CONFIG)
    assert first.results.height == len(runs) * len(STRATS)
    assert (first.computed, first.reused) == (12, 0)
    again = backtest_all(runs, STRATS, CONFIG, first.results)
    assert (again.computed, again.reused) == (0, 12)
    assert again.results.equals(first.results)


def test_new_data_or_new_costs_invalidate_exactly_the_affected_results(runs):
    first = backtest_all(runs, STRATS, CONFIG)
    changed = [
        BacktestRun(r.symbol, r.bars, r.data_version + ("-new" if r.symbol == "ETH/BTC" else ""))
        for r in runs
    ]
    partly = backtest_all(changed, STRATS, CONFIG, first.results)
    assert (partly.computed, partly.reused) == (4, 8)
    dearer = backtest_all(runs, STRATS, BacktestConfig(fee=0.002), first.results)
    assert dearer.computed == 12


def test_a_symbol_that_cannot_be_backtested_gets_an_error_row(runs):
    tiny = BacktestRun("TINY/USDT", runs[0].bars.take(slice(0, 10)), "v-tiny")
    summary = backtest_all([tiny, runs[0]], STRATS, CONFIG)
    errors = summary.results.filter(pl.col("symbol") == "TINY/USDT")["error"]
    assert errors.is_not_null().all()
    assert "too few" in errors[0]
    assert summary.results.filter(pl.col("symbol") == "BTC/USDT")["error"].is_null().all()


def _universe(*rows: tuple[str, bool, str, float]) -> pl.DataFrame:
    return pl.DataFrame([{"symbol": s, "kept": k, "reason": r, "quote_volume_24h": v} for s, k, r, v in rows])


def test_every_market_is_kept_or_dropped_with_the_reason(runs):
    results = backtest_all(runs, STRATS, CONFIG).results
    universe = _universe(
        ("BTC/USDT", True, "kept", 1e6),
        ("ETH/BTC", True, "kept", 10.0),
        ("LTC/BTC", True, "kept", 1e6),
        ("TGT/USDT", True, "kept", 1e6),
        ("SRM/USDT", False, "not active for trading on the exchange", 0.0),
    )
    quality = pl.DataFrame(
        {
            "symbol": ["BTC/USDT", "ETH/BTC", "LTC/BTC", "TGT/USDT"],
            "verdict": ["good", "good", "good", "bad"],
            "reason": ["all checks passed"] * 3 + ["105 bars missing"],
        }
    )
    thresholds = Thresholds(
        min_total_return=-1.0, min_sharpe=-100.0, max_drawdown=1.0, min_trades=1, min_quote_volume=1000.0
    )
    decided = {
        r["symbol"]: r for r in filter_symbols(universe, quality, results, thresholds).iter_rows(named=True)
    }
    assert decided["BTC/USDT"]["kept"] and decided["LTC/BTC"]["kept"]
    assert decided["SRM/USDT"]["reason"] == "not in the universe: not active for trading on the exchange"
    assert decided["TGT/USDT"]["reason"] == "data quality: 105 bars missing"
    assert decided["ETH/BTC"]["reason"].startswith("illiquid")
    best = best_per_symbol(results)
    assert decided["BTC/USDT"]["best_strategy"] == best["BTC/USDT"]["strategy"]


def test_thresholds_name_what_a_symbol_missed(runs):
    results = backtest_all(runs[:1], STRATS, CONFIG).results
    universe = _universe(("BTC/USDT", True, "kept", 1e6))
    quality = pl.DataFrame({"symbol": ["BTC/USDT"], "verdict": ["good"], "reason": ["ok"]})
    strict = Thresholds(
        min_total_return=5.0, min_sharpe=50.0, max_drawdown=0.001, min_trades=10_000, min_quote_volume=0
    )
    row = filter_symbols(universe, quality, results, strict).row(0, named=True)
    assert not row["kept"]
    for fragment in ("no strategy qualifies", "return", "< 500.0%", "Sharpe", "drawdown", "trades < 10000"):
        assert fragment in row["reason"]


def test_groups_follow_clusters_and_the_members_favourite_strategy():
    filtered = pl.DataFrame(
        {
            "symbol": ["A", "B", "C", "D", "E"],
            "kept": [True, True, True, True, False],
            "best_strategy": ["sma_cross", "sma_cross", "rsi_reversion", "macd_trend", "sma_cross"],
            "sharpe": [1.0, 0.5, 2.0, 1.0, 3.0],
        }
    )
    clusters = pl.DataFrame({"symbol": ["A", "B", "C", "E"], "cluster": [1, 1, 1, 2]})
    groups = {g.name: g for g in group_symbols(filtered, clusters)}
    assert set(groups) == {"cluster-1", "solo-D"}
    assert groups["cluster-1"].symbols == ("A", "B", "C")
    assert groups["cluster-1"].strategy == "sma_cross"  # two votes beat one better Sharpe
    name = study_name("mexc", "1h", groups["cluster-1"], {"A": "1", "B": "2", "C": "3"})
    assert name == study_name("mexc", "1h", groups["cluster-1"], {"A": "1", "B": "2", "C": "3"})
    assert name != study_name("mexc", "1h", groups["cluster-1"], {"A": "1", "B": "2", "C": "4"})


def test_derived_tables_replace_one_scope_and_survive_a_schema_change(tmp_path):
    store = ResearchStore(tmp_path / "x.duckdb", tmp_path / "lake")
    assert store.read("t", {"exchange": "mexc"}).is_empty()
    store.write("t", pl.DataFrame({"symbol": ["A"], "v": [1.0]}), {"exchange": "mexc", "timeframe": "1h"})
    store.write("t", pl.DataFrame({"symbol": ["B"], "v": [2.0]}), {"exchange": "mexc", "timeframe": "5m"})
    store.write("t", pl.DataFrame({"symbol": ["C"], "v": [3.0]}), {"exchange": "mexc", "timeframe": "1h"})
    assert store.read("t", {"exchange": "mexc", "timeframe": "1h"})["symbol"].to_list() == ["C"]
    assert store.read("t", {"exchange": "mexc", "timeframe": "5m"})["symbol"].to_list() == ["B"]
    store.write("t", pl.DataFrame({"symbol": ["D"], "w": ["new"]}), {"exchange": "mexc", "timeframe": "1h"})
    assert store.read("t", {"exchange": "mexc", "timeframe": "1h"}).columns == ["symbol", "w"]
    path = store.write_series("features", "mexc", "1h", "BTC/USDT", pl.DataFrame({"x": [1]}))
    assert path.name == "BTC_USDT.parquet" and not path.with_name(path.name + ".partial").exists()
    assert store.read_series("features", "mexc", "1h", "BTC/USDT")["x"].to_list() == [1]
    assert store.drop_series("features", "mexc", "1h", "BTC/USDT")
    assert store.read_series("features", "mexc", "1h", "BTC/USDT") is None


def test_a_symbol_without_enough_data_is_dropped_with_that_reason(runs):
    tiny = BacktestRun("TINY/USDT", runs[0].bars.take(slice(0, 10)), "v-tiny")
    results = backtest_all([tiny], STRATS, CONFIG).results
    universe = _universe(("TINY/USDT", True, "kept", 1e6))
    quality = pl.DataFrame({"symbol": ["TINY/USDT"], "verdict": ["good"], "reason": ["all checks passed"]})
    loose = Thresholds(min_total_return=-1.0, min_sharpe=-100.0, max_drawdown=1.0, min_trades=0,
                       min_quote_volume=0)
    row = filter_symbols(universe, quality, results, loose).row(0, named=True)
    assert not row["kept"]
    assert row["reason"].startswith("backtest failed:") and "too few" in row["reason"]
