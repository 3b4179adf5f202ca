"""Replaying recorded candles: history shifted to end at the clock start, then an endless continuation."""

from __future__ import annotations

import shutil
from pathlib import Path

import ccxt
import numpy as np
import polars as pl
import pytest

from xray_core.errors import DataError
from xray_sim.exchange.replay import ReplayMarket

CANDLES = Path(__file__).resolve().parents[2] / "data" / "candles"
START = 1_750_000_123_456  # deliberately not on a bar boundary
FIVE_MINUTES = 300_000
HOUR = 3_600_000


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for name in ("BTC_USDT-5m.parquet", "ETH_BTC-5m.parquet", "UNITTEST_BTC-1m.parquet",
                 "UNITTEST_BTC-30m.parquet", "XRP_USDT_USDT-5m-futures.parquet", "LICENSE-GPL-3.0.txt"):
        shutil.copy(CANDLES / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def market(data_dir: Path) -> ReplayMarket:
    return ReplayMarket(data_dir, START)


def _file(name: str) -> pl.DataFrame:
    return pl.read_parquet(CANDLES / name)


def test_each_pair_is_replayed_from_its_finest_spot_file(market):
    assert [s.symbol for s in market.specs] == ["BTC/USDT", "ETH/BTC", "UNITTEST/BTC", "XRP/USDT"]
    assert market.timeframes("UNITTEST/BTC")[0] == "1m"  # the 1m file wins over the 30m one
    assert market.timeframes("BTC/USDT") == ("5m", "15m", "30m", "1h", "4h", "1d")  # never below the file's
    assert len(market.bars("BTC/USDT", "1m", START - HOUR, START, START)) == 0
    btc = market.spec("BTCUSDT")
    assert btc is not None and (btc.price_decimals, btc.quote, btc.min_quote) == (1, "USDT", "1")
    assert market.spec("ETH/BTC").min_quote == "0.0001"  # type: ignore[union-attr]


def test_the_whole_file_is_history_ending_at_the_clock_start(market):
    recorded = _file("BTC_USDT-5m.parquet")
    stamps = recorded["timestamp"].dt.epoch("ms").to_numpy()
    boundary = START - START % FIVE_MINUTES
    shift = boundary - (int(stamps[-1]) + FIVE_MINUTES)
    history = market.bars("BTC/USDT", "5m", int(stamps[0]) + shift, boundary, START)
    assert np.array_equal(history.timestamp, stamps + shift)
    assert np.array_equal(history.close, recorded["close"].to_numpy())
    assert history.timestamp[-1] + FIVE_MINUTES == boundary


def test_after_the_history_the_file_s_returns_replay_chained_from_the_last_close(market):
    recorded = _file("BTC_USDT-5m.parquet")["close"].to_numpy()
    boundary = START - START % FIVE_MINUTES
    n = len(recorded)
    later = boundary + (n + 10) * FIVE_MINUTES  # past one full replay of the file
    bars = market.bars("BTC/USDT", "5m", boundary, later, later)
    closes = np.concatenate([[recorded[-1]], bars.close])
    replayed = closes[1:] / closes[:-1]
    source = recorded[1:] / recorded[:-1]
    assert np.allclose(replayed[: n - 1], source, rtol=2e-5)  # prices are rounded to the tick
    assert np.allclose(replayed[n - 1: n + 5], source[:6], rtol=2e-5)  # and round again
    assert np.all(np.diff(bars.timestamp) == FIVE_MINUTES)


def test_the_continuation_never_runs_dry(market):
    year_later = START + 365 * 24 * HOUR
    year_later -= year_later % (24 * HOUR)
    bars = market.bars("ETH/BTC", "1d", year_later - 10 * 24 * HOUR, year_later, year_later)
    assert len(bars) == 10 and np.all(bars.close > 0)
    assert market.price_at("ETH/BTC", year_later) is not None


def test_longer_timeframes_aggregate_the_file_s_bars(market):
    hour = START - START % HOUR - 5 * HOUR
    [bar] = [market.bars("BTC/USDT", "1h", hour, hour + HOUR, START)]
    fives = market.bars("BTC/USDT", "5m", hour, hour + HOUR, START)
    assert len(bar) == 1 and len(fives) == 12
    assert (bar.open[0], bar.close[0]) == (fives.open[0], fives.close[-1])
    assert bar.high[0] == fives.high.max() and bar.low[0] == fives.low.min()


def test_the_price_moves_continuously_across_the_start(market):
    boundary = START - START % FIVE_MINUTES
    before = market.price_at("BTC/USDT", boundary - 1)
    after = market.price_at("BTC/USDT", boundary)
    assert before is not None and after is not None
    assert abs(after / before - 1) < 0.01
    assert market.price_at("BTC/USDT", 0) is None  # before the recorded data


@pytest.mark.parametrize(("write", "problem"), [
    (lambda path: pl.DataFrame({"timestamp": [1, 2], "close": [1.0, 2.0]}).write_parquet(path),
     "lacks column"),
    (lambda path: _file("BTC_USDT-5m.parquet").head(0).write_parquet(path), "0 bar"),
    (lambda path: _file("BTC_USDT-5m.parquet").with_columns(pl.col("timestamp").dt.epoch("ms"))
     .write_parquet(path), "not a Datetime"),
    (lambda path: _file("BTC_USDT-5m.parquet").with_columns(close=pl.lit(0.0)).write_parquet(path),
     "non-positive"),
    (lambda path: path.write_bytes(b"not parquet"), "cannot read"),
])
def test_a_bad_file_is_a_data_error_naming_it(tmp_path, write, problem):
    write(tmp_path / "BAD_USDT-5m.parquet")
    with pytest.raises(DataError, match=rf"BAD_USDT-5m\.parquet.*{problem}|{problem}.*BAD_USDT-5m\.parquet"):
        ReplayMarket(tmp_path, START)


def test_a_folder_without_candles_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no candle files"):
        ReplayMarket(tmp_path, START)
    with pytest.raises(DataError, match="does not exist"):
        ReplayMarket(tmp_path / "missing", START)
    (tmp_path / "candles.parquet").write_bytes(b"")
    with pytest.raises(DataError, match=r"candles\.parquet"):
        ReplayMarket(tmp_path, START)


def test_stock_ccxt_trades_a_replayed_market(start_custom_emulator, mexc_at, data_dir):
    emulator = start_custom_emulator(data_dir=data_dir, starting_funds={"BTC": "2", "USDT": "1000"})
    client = mexc_at(emulator.base_url)
    assert set(client.load_markets()) == {"BTC/USDT", "ETH/BTC", "UNITTEST/BTC", "XRP/USDT"}
    bars = client.fetch_ohlcv("ETH/BTC", "5m", limit=20)
    assert len(bars) == 20 and np.all(np.diff([b[0] for b in bars]) == FIVE_MINUTES)
    assert len(client.fetch_ohlcv("ETH/BTC", "1h", limit=5)) == 5
    with pytest.raises(ccxt.BadRequest, match="interval 1m is not available for ETHBTC"):
        client.fetch_ohlcv("ETH/BTC", "1m", limit=5)
    order = client.create_order("ETH/BTC", "market", "buy", 1)
    assert client.fetch_order(order["id"], "ETH/BTC")["status"] == "closed"
    balance = client.fetch_balance()
    assert balance["ETH"]["total"] == pytest.approx(1 - 0.0005) and balance["BTC"]["total"] < 2
