"""The DuckDB candle store: idempotent upserts, transactions, and exact round trips."""

from pathlib import Path

import duckdb
import polars as pl
import pytest

from xray_core.candles.store import CandleStore, SeriesKey

KEY = SeriesKey("mexc", "BTC/USDT", "5m")


@pytest.fixture
def store(tmp_path: Path) -> CandleStore:
    return CandleStore(tmp_path / "lake" / "xray.duckdb")


def test_round_trip_is_exact(store, btc_5m):
    result = store.upsert(KEY, btc_5m)
    assert (result.inserted, result.updated) == (btc_5m.height, 0)
    assert store.read(KEY).equals(btc_5m)


def test_upserting_the_same_bars_twice_changes_nothing(store, btc_5m):
    store.upsert(KEY, btc_5m)
    before = store.fingerprint(KEY)
    again = store.upsert(KEY, btc_5m)
    assert (again.inserted, again.updated) == (0, btc_5m.height)
    assert store.fingerprint(KEY) == before
    assert store.series()["bars"].to_list() == [btc_5m.height]


def test_a_corrected_bar_replaces_the_old_one(store, btc_5m):
    store.upsert(KEY, btc_5m.head(100))
    corrected = btc_5m.slice(50, 1).with_columns(pl.col("close") * 1.5)
    store.upsert(KEY, corrected)
    stored = store.read(KEY)
    assert stored.height == 100
    assert stored["close"][50] == corrected["close"][0]


def test_repeated_timestamps_in_one_batch_keep_the_last(store, btc_5m):
    last = btc_5m.slice(5, 1).with_columns(pl.col("volume") + 1)
    result = store.upsert(KEY, pl.concat([btc_5m.head(10), last]))
    assert result.inserted == 10
    assert store.read(KEY)["volume"][5] == last["volume"][0]


def test_a_failing_batch_leaves_stored_data_untouched(store, btc_5m):
    store.upsert(KEY, btc_5m.head(100))
    before = store.fingerprint(KEY)
    bad = pl.concat(
        [btc_5m.slice(100, 50), btc_5m.slice(150, 1).with_columns(pl.lit(None).alias("timestamp"))]
    )
    with pytest.raises(duckdb.ConstraintException):
        store.upsert(KEY, bad)  # the NULL key fails after 50 good rows were already inserted
    assert store.fingerprint(KEY) == before
    assert store.read(KEY).height == 100


def test_series_are_kept_apart_and_read_by_range(store, btc_5m):
    other = SeriesKey("mexc", "BTC/USDT", "1h")
    store.upsert(KEY, btc_5m.head(10))
    store.upsert(other, btc_5m.head(3))
    start = int(btc_5m["timestamp"][2].timestamp() * 1000)
    end = int(btc_5m["timestamp"][5].timestamp() * 1000)
    assert store.read(KEY, start, end).height == 3
    assert store.last_timestamp_ms(other) == int(btc_5m["timestamp"][2].timestamp() * 1000)
    assert store.last_timestamp_ms(SeriesKey("mexc", "ETH/USDT", "5m")) is None


def test_verdicts_and_universe_are_replaced_atomically(store):
    markets = pl.DataFrame(
        {
            "symbol": ["A/USDT", "B/USDT"],
            "base": ["A", "B"],
            "quote": ["USDT"] * 2,
            "active": [True, True],
            "quote_volume_24h": [1.0, 2.0],
            "kept": [True, False],
            "reason": ["kept", "too small"],
        }
    )
    store.save_markets("mexc", markets, 1)
    store.save_markets("mexc", markets.head(1), 2)
    assert store.markets("mexc")["symbol"].to_list() == ["A/USDT"]
    verdicts = pl.DataFrame(
        {
            "symbol": ["A/USDT", "B/USDT"],
            "bars": [5, 0],
            "verdict": ["good", "bad"],
            "reason": ["all checks passed", "no candles"],
        }
    )
    store.save_quality("mexc", "1h", verdicts, 3)
    assert store.good_symbols("mexc", "1h") == ["A/USDT"]
    assert store.good_symbols("mexc", "5m") == []


def test_a_session_shares_one_connection_and_sees_its_own_writes(store, btc_5m):
    with store.session():
        with store.connect() as first, store.connect() as second:
            assert first is second
        store.upsert(KEY, btc_5m.head(20))
        assert store.read(KEY).height == 20
    with store.connect(read_only=True) as after:
        assert after is not first
    assert store.last_timestamp_ms(KEY) == int(btc_5m["timestamp"][19].timestamp() * 1000)
