"""`xray indicators`, `xray backtest` and `xray backtest-grid` as a user runs them: real processes on the
real candle files of tests/data/candles, checked against the library calls they wrap."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from xray_core.backtest import METRIC_NAMES, BacktestConfig, Prices, run_backtest, sma_cross_grid
from xray_core.candles.bars import Bars
from xray_core.candles.schema import read_parquet
from xray_core.indicators import add_indicators
from xray_core.strategies import Mode, get_strategy

XRAY = str(Path(sys.executable).with_name("xray"))
CANDLES = Path(__file__).resolve().parents[1] / "data" / "candles"
BTC = CANDLES / "BTC_USDT-5m.parquet"
ETH = CANDLES / "ETH_BTC-5m.parquet"
XRP = CANDLES / "XRP_ETH-1m.parquet"
ENV = {k: v for k, v in os.environ.items() if not k.startswith("XRAY_")} | {"COLUMNS": "120"}
TRADE_FIELDS = {"entry_time", "exit_time", "side", "entry_price", "exit_price", "pnl"}


def xray(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([XRAY, *map(str, args)], env=ENV, capture_output=True, text=True, timeout=300,
                          cwd=cwd, check=False)


def strict_json(text: str) -> Any:
    """The whole of `text` as standard JSON (no NaN/Infinity tokens: they must be null)."""
    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(text, parse_constant=refuse)


def same(value: Any, expected: float) -> bool:
    """A JSON metric equals the library's float (NaN/inf are written as null)."""
    return value is None if not math.isfinite(expected) else value == expected


def iso_ms(text: str) -> int:
    assert text.endswith("Z"), text
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Candle files that are wrong in one way each (and a folder mixing one of them with a good one)."""
    folder = tmp_path_factory.mktemp("bad")
    good = read_parquet(ETH)
    files = {name: folder / f"{name.upper()}_BTC-5m.parquet" for name in
             ("empty", "corrupt", "no_close", "text_close", "nan_close", "short", "flat")}
    good.head(0).write_parquet(files["empty"])
    files["corrupt"].write_bytes(b"PAR1 this is not parquet")
    good.drop("close").write_parquet(files["no_close"])
    good.with_columns(pl.col("close").cast(pl.String)).write_parquet(files["text_close"])
    nan_at_7 = pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise(pl.col("close"))
    good.with_columns(nan_at_7.alias("close")).write_parquet(files["nan_close"])
    good.head(30).write_parquet(files["short"])
    good.head(300).with_columns(pl.lit(1.0).alias(c) for c in ("open", "high", "low", "close")).write_parquet(
        files["flat"])
    files["missing"] = folder / "MISSING_BTC-5m.parquet"
    mixed = folder / "mixed"
    mixed.mkdir()
    shutil.copy(ETH, mixed / ETH.name)
    shutil.copy(files["short"], mixed / files["short"].name)
    files["mixed"] = mixed
    all_bad = folder / "all_bad"
    all_bad.mkdir()
    for name in ("corrupt", "short"):
        shutil.copy(files[name], all_bad / files[name].name)
    files["all_bad"] = all_bad
    return files


# ---- indicators ---------------------------------------------------------------------------------
def test_indicators_writes_the_candles_and_every_indicator(tmp_path):
    out = tmp_path / "deep" / "eth.parquet"
    result = xray("indicators", "--candles", ETH, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    expected = add_indicators(read_parquet(ETH))
    report = strict_json(result.stdout)
    assert report == {"rows": expected.height, "columns": expected.columns, "out": str(out)}
    written = pl.read_parquet(out)
    assert_frame_equal(written, expected)
    assert {"sma_20", "ema_20", "rsi_14", "macd", "macd_signal", "macd_hist", "bb_upper", "bb_middle",
            "bb_lower", "atr_14"} <= set(written.columns)
    assert sorted(p.name for p in out.parent.iterdir()) == ["eth.parquet"]  # no .partial left behind


def test_indicators_without_json_prints_a_note_not_json(tmp_path):
    out = tmp_path / "xrp.parquet"
    result = xray("indicators", "--candles", XRP, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "wrote" in result.stderr and str(out) in result.stderr
    assert pl.read_parquet(out).height == read_parquet(XRP).height


# ---- backtest -----------------------------------------------------------------------------------
def direct_backtest(path: Path, name: str, params: dict[str, Any], config: BacktestConfig):
    frame = read_parquet(path)
    strategy = get_strategy(name)
    positions = strategy.positions(Bars.from_frame(frame), strategy.params(params), Mode(config.mode))
    prices = Prices.from_frame(frame)
    return run_backtest(prices.open, prices.high, prices.low, prices.close, prices.timestamps_ms, positions,
                        config, with_trades=True)


@pytest.mark.parametrize(
    ("strategy", "options", "params", "config"),
    [
        ("sma_cross", ["--param", "fast=10", "--param", "slow=50", "--fee", "0.001", "--slippage", "0.0005"],
         {"fast": 10, "slow": 50}, BacktestConfig(fee=0.001, slippage=0.0005)),
        ("rsi_reversion", ["--param", "period=10", "--param", "lower=25.5", "--mode", "long_short",
                           "--cash", "2500", "--fee", "0"],
         {"period": 10, "lower": 25.5}, BacktestConfig(fee=0.0, cash=2500.0, mode="long_short")),
    ],
)
def test_backtest_json_equals_run_backtest(strategy, options, params, config):
    result = xray("backtest", "--candles", BTC, "--strategy", strategy, *options, "--json")
    assert result.returncode == 0, result.stderr
    report = strict_json(result.stdout)
    direct = direct_backtest(BTC, strategy, params, config)
    assert report["strategy"] == strategy
    assert report["params"] == get_strategy(strategy).params(params).model_dump()
    assert (report["symbol"], report["timeframe"], report["bars"]) == ("BTC/USDT", "5m", 10_999)
    assert report["final_equity"] == direct.metrics.final_equity
    for name in METRIC_NAMES:
        assert same(report[name], getattr(direct.metrics, name)), name
    trades = report["trades"]
    assert direct.trades is not None
    assert len(trades) == report["n_trades"] == direct.trades.height > 0
    assert all(set(trade) >= TRADE_FIELDS for trade in trades)
    first = direct.trades.row(0, named=True)
    assert iso_ms(trades[0]["entry_time"]) == int(first["entry_time"].timestamp() * 1000)
    assert iso_ms(trades[0]["exit_time"]) == int(first["exit_time"].timestamp() * 1000)
    assert [t["pnl"] for t in trades] == direct.trades["pnl"].to_list()
    assert {t["side"] for t in trades} <= {"long", "short"}
    assert sum(t["pnl"] for t in trades) == pytest.approx(report["final_equity"] - config.cash)


def test_backtest_writes_undefined_metrics_as_null(bad_files):
    """Constant prices never cross: no trades, so Sharpe, win rate and profit factor are 0/0."""
    result = xray("backtest", "--candles", bad_files["flat"], "--strategy", "sma_cross", "--json")
    assert result.returncode == 0, result.stderr
    report = strict_json(result.stdout)
    assert report["n_trades"] == 0 and report["trades"] == []
    assert report["sharpe"] is None and report["win_rate"] is None and report["profit_factor"] is None
    assert report["final_equity"] == 10_000.0


def test_backtest_without_json_prints_a_summary():
    result = xray("backtest", "--candles", XRP, "--strategy", "macd_trend")
    assert result.returncode == 0, result.stderr
    for fragment in ("macd_trend", "XRP/ETH", "final_equity", "sharpe", "max_drawdown", "n_trades"):
        assert fragment in result.stdout


# ---- backtest-grid ------------------------------------------------------------------------------
def test_sma_cross_grid_over_two_files_equals_the_fused_kernel(tmp_path):
    for path in (ETH, XRP):
        shutil.copy(path, tmp_path / path.name)
    result = xray("backtest-grid", "--candles", tmp_path, "--strategy", "sma_cross", "--grid", "fast=5:50:5",
                  "--grid", "slow=20:200:20", "--fee", "0.001", "--slippage", "0.0005", "--json")
    assert result.returncode == 0, result.stderr
    rows = strict_json(result.stdout)
    pairs = [(f, s) for f in range(5, 51, 5) for s in range(20, 201, 20) if f < s]
    assert len(pairs) == 90 and len(rows) == 2 * 90
    expected = sma_cross_grid({p.name: read_parquet(p) for p in (ETH, XRP)}, range(5, 51, 5),
                              range(20, 201, 20), BacktestConfig(fee=0.001, slippage=0.0005))
    assert [(r["file"], r["fast"], r["slow"]) for r in rows] == list(
        zip(expected["symbol"], expected["fast"], expected["slow"], strict=True))
    assert {(r["symbol"], r["timeframe"]) for r in rows} == {("ETH/BTC", "5m"), ("XRP/ETH", "1m")}
    for row, want in zip(rows, expected.iter_rows(named=True), strict=True):
        for name in METRIC_NAMES:
            assert same(row[name], want[name]), (row, name)


def test_grid_of_another_strategy_runs_each_combination_and_skips_invalid_ones():
    """macd_trend needs fast < slow: of fast {10, 20, 30} x slow {20, 30}, three pairs are valid."""
    result = xray("backtest-grid", "--candles", ETH, "--strategy", "macd_trend", "--grid", "fast=10:30:10",
                  "--grid", "slow=20:30:10", "--grid", "signal=9", "--mode", "long_short", "--json")
    assert result.returncode == 0, result.stderr
    rows = strict_json(result.stdout)
    assert [(r["fast"], r["slow"], r["signal"]) for r in rows] == [(10, 20, 9), (10, 30, 9), (20, 30, 9)]
    for row in rows:
        params = {"fast": row["fast"], "slow": row["slow"], "signal": 9}
        direct = direct_backtest(ETH, "macd_trend", params, BacktestConfig(mode="long_short"))
        for name in METRIC_NAMES:
            assert same(row[name], getattr(direct.metrics, name)), (row, name)


def test_grid_without_json_prints_the_best_rows_and_a_count():
    result = xray("backtest-grid", "--candles", XRP, "--strategy", "sma_cross", "--grid", "fast=5:20:5",
                  "--grid", "slow=20:40:20")
    assert result.returncode == 0, result.stderr
    assert "by Sharpe" in result.stdout and "XRP/ETH" in result.stdout
    assert "7 runs: 1 file(s) x 7 combination(s)" in result.stdout


def test_grid_skips_a_failing_file_and_exits_1(bad_files):
    result = xray("backtest-grid", "--candles", bad_files["mixed"], "--strategy", "sma_cross",
                  "--grid", "fast=5:10:5", "--grid", "slow=40:60:20", "--json")
    assert result.returncode == 1, result.stderr
    rows = strict_json(result.stdout)
    assert len(rows) == 4 and {r["file"] for r in rows} == {ETH.name}
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "SHORT_BTC-5m.parquet" in lines[0] and "too few" in lines[0], lines


def test_grid_exits_2_when_no_file_can_run(bad_files):
    result = xray("backtest-grid", "--candles", bad_files["all_bad"], "--strategy", "rsi_reversion",
                  "--grid", "period=40:50:10", "--json")
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3, lines
    assert "CORRUPT_BTC-5m.parquet" in lines[0] and "not readable Parquet" in lines[0]
    assert "SHORT_BTC-5m.parquet" in lines[1] and "too few" in lines[1]
    assert "none of the 2 candle files could be backtested" in lines[2]


# ---- bad input: one line on stderr, exit != 0, nothing written ----------------------------------
IND = ["indicators", "--out", "out.parquet", "--candles"]
BT = ["backtest", "--strategy", "sma_cross", "--candles"]
GRID = ["backtest-grid", "--strategy", "sma_cross", "--grid", "fast=5:20:5", "--grid", "slow=30:50:10",
        "--candles"]
GOOD = str(ETH)
ON_GOOD = ["backtest-grid", "--strategy", "sma_cross", "--candles", GOOD]  # options follow
BAD_INPUT: dict[str, tuple[list[str], list[str]]] = {  # id: (arguments, fragments of the error line)
    "indicators-missing": ([*IND, "{missing}"], ["does not exist"]),
    "indicators-empty": ([*IND, "{empty}"], ["has no rows"]),
    "indicators-corrupt": ([*IND, "{corrupt}"], ["not readable Parquet"]),
    "indicators-no-column": ([*IND, "{no_close}"], ["missing column(s) close"]),
    "indicators-text-column": ([*IND, "{text_close}"], ["'close' is String"]),
    "indicators-nan": ([*IND, "{nan_close}"], ["NAN_CLOSE_BTC-5m.parquet", "missing value at row 7"]),
    "indicators-too-few-bars": ([*IND, "{short}"], ["SHORT_BTC-5m.parquet", "too few"]),
    "indicators-not-parquet-out": (["indicators", "--candles", GOOD, "--out", "o.csv"], ["end in .parquet"]),
    "backtest-missing": ([*BT, "{missing}"], ["does not exist"]),
    "backtest-corrupt": ([*BT, "{corrupt}"], ["not readable Parquet"]),
    "backtest-wrong-schema": ([*BT, "{no_close}"], ["missing column(s) close"]),
    "backtest-nan": ([*BT, "{nan_close}"], ["close[7] = nan"]),
    "backtest-too-few-bars": ([*BT, "{short}"], ["SHORT_BTC-5m.parquet", "too few"]),
    "backtest-unknown-strategy": (["backtest", "--strategy", "smacross", "--candles", GOOD],
                                  ["unknown strategy 'smacross'", "sma_cross"]),
    "backtest-unknown-param": ([*BT, GOOD, "--param", "fsat=3"], ["unknown parameter 'fsat'"]),
    "backtest-param-out-of-range": ([*BT, GOOD, "--param", "fast=1"], ["fast=1", "greater than or equal"]),
    "backtest-param-not-a-number": ([*BT, GOOD, "--param", "fast=ten"], ["fast='ten'", "integer"]),
    "backtest-param-rule": ([*BT, GOOD, "--param", "fast=60"], ["fast (60) must be below slow (50)"]),
    "backtest-param-malformed": ([*BT, GOOD, "--param", "fast"], ["--param 'fast' is malformed"]),
    "backtest-fee-text": ([*BT, GOOD, "--fee", "abc"], ["--fee 'abc' is not a number"]),
    "backtest-fee-negative": ([*BT, GOOD, "--fee", "-0.001"], ["fee must be in"]),
    "backtest-fee-too-high": ([*BT, GOOD, "--fee", "0.5"], ["fee must be in"]),
    "backtest-cash-zero": ([*BT, GOOD, "--cash", "0"], ["cash must be a positive"]),
    "backtest-cash-inf": ([*BT, GOOD, "--cash", "inf"], ["cash must be a positive"]),
    "backtest-mode": ([*BT, GOOD, "--mode", "shorts"], ["mode must be one of"]),
    "grid-not-a-number": ([*ON_GOOD, "--grid", "fast=5:x:5"], ["fast=5:x:5", "'x' is not a finite number"]),
    "grid-start-above-stop": ([*ON_GOOD, "--grid", "fast=50:5:5"], ["start 50 is above stop 5"]),
    "grid-zero-step": ([*ON_GOOD, "--grid", "fast=5:50:0"], ["the step must be positive"]),
    "grid-negative-step": ([*ON_GOOD, "--grid", "fast=5:50:-5"], ["the step must be positive"]),
    "grid-malformed": ([*ON_GOOD, "--grid", "fast:5"], ["--grid 'fast:5' is malformed"]),
    "grid-two-parts": ([*ON_GOOD, "--grid", "fast=5:50"], ["--grid 'fast=5:50' is malformed"]),
    "grid-unknown-param": ([*ON_GOOD, "--grid", "fsat=5:10:5"], ["unknown parameter 'fsat'"]),
    "grid-out-of-range": ([*ON_GOOD, "--grid", "slow=300:500:100"], ["slow=500", "less than or equal"]),
    "grid-no-valid-pair": ([*ON_GOOD, "--grid", "fast=60:80:10", "--grid", "slow=20:40:10"],
                           ["no combination of the grid"]),
    "grid-none": (ON_GOOD, ["no --grid given"]),
    "grid-unknown-strategy": (["backtest-grid", "--strategy", "nope", "--candles", GOOD, "--grid", "a=1"],
                              ["unknown strategy 'nope'"]),
    "grid-cash": ([*GRID, GOOD, "--cash", "-5"], ["cash must be a positive"]),
    "grid-missing": ([*GRID, "{missing}"], ["does not exist"]),
    "grid-empty-folder": ([*GRID, "."], ["has no *.parquet candle files"]),
    "grid-nan": ([*GRID, "{nan_close}"], ["close[7] = nan"]),
    "grid-wrong-schema": ([*GRID, "{text_close}"], ["'close' is String"]),
    "grid-too-few-bars": ([*GRID, "{short}"], ["SHORT_BTC-5m.parquet", "too few for SMA(50)"]),
}


@pytest.fixture(scope="module")
def bad_results(bad_files, tmp_path_factory) -> dict[str, tuple[subprocess.CompletedProcess[str], Path]]:
    """Every bad-input case, each run in its own empty working folder; two at a time to save time."""
    def run(case: str) -> tuple[subprocess.CompletedProcess[str], Path]:
        cwd = tmp_path_factory.mktemp(case)
        args = [arg.format(**{k: str(v) for k, v in bad_files.items()}) for arg in BAD_INPUT[case][0]]
        return xray(*args, cwd=cwd), cwd

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BAD_INPUT, pool.map(run, BAD_INPUT), strict=True))


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_one_clear_line(bad_results, case):
    result, cwd = bad_results[case]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xray: error: ")
    for fragment in BAD_INPUT[case][1]:
        assert fragment in lines[0], lines[0]
    assert list(cwd.iterdir()) == []  # nothing written, not even a .partial file


def test_help_lists_the_research_commands():
    result = subprocess.run([XRAY, "--help"], capture_output=True, text=True, check=True, env=ENV)
    for command in ("indicators", "backtest", "backtest-grid"):
        assert command in result.stdout
