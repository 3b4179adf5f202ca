"""Ingestion end to end: emulator → stock ccxt → DuckDB → quality verdicts."""

import polars as pl
import pytest

from xray_core.candles.store import CandleStore, SeriesKey
from xray_core.exchange.client import ExchangeClient
from xray_core.ingest import ingest_symbol, refresh_universe, refresh_verdicts
from xray_core.settings import ExchangeSettings, IngestSettings, QualitySettings

HOUR = 3_600_000
INGEST = IngestSettings(timeframe="1h", history_days=20)
QUALITY = QualitySettings()


@pytest.fixture
def client(emulator) -> ExchangeClient:
    return ExchangeClient(ExchangeSettings(url=emulator.base_url, backoff_s=0.01), sleep=lambda _: None)


@pytest.fixture
def store(tmp_path) -> CandleStore:
    return CandleStore(tmp_path / "xray.duckdb")


def test_a_healthy_symbol_is_complete_and_good(client, store):
    result = ingest_symbol(client, store, "BTC/USDT", INGEST, QUALITY)
    assert result.ok and result.report is not None
    assert result.report.verdict == "good", result.report.reason
    stored = store.read(SeriesKey("mexc", "BTC/USDT", "1h"))
    stamps = stored["timestamp"].dt.epoch("ms")
    assert stamps.diff().drop_nulls().unique().to_list() == [HOUR]  # no gap, no repeat
    now = client.fetch_time()
    assert int(stamps[-1]) == now - now % HOUR - HOUR  # the newest closed bar, not the forming one
    assert stored.height == 20 * 24


def test_the_second_run_fetches_only_new_bars(emulator, client, store):
    first = ingest_symbol(client, store, "ETH/USDT", INGEST, QUALITY)
    emulator.clock.advance(3 * HOUR)
    second = ingest_symbol(client, store, "ETH/USDT", INGEST, QUALITY)
    assert first.written is not None and second.written is not None
    assert second.fetched == 3
    assert (second.written.inserted, second.written.updated) == (3, 0)
    third = ingest_symbol(client, store, "ETH/USDT", INGEST, QUALITY)
    assert third.fetched == 0


def test_broken_symbols_are_bad_with_reasons_and_never_stop_the_others(client, store):
    refresh_universe(client, store, INGEST)
    results = {s: ingest_symbol(client, store, s, INGEST, QUALITY) for s in ("TGT/USDT", "SOL/USDT")}
    assert all(r.ok for r in results.values())
    tgt = results["TGT/USDT"].report
    assert tgt is not None and tgt.verdict == "bad"
    assert "bars missing" in tgt.reason and "zero, negative or missing price" in tgt.reason
    assert results["TGT/USDT"].feed.identical_duplicates > 0  # the feed repeated bars; stored once
    verdicts = refresh_verdicts(store, "mexc", "1h")
    by_symbol = {r["symbol"]: r for r in verdicts.iter_rows(named=True)}
    assert by_symbol["SOL/USDT"]["verdict"] == "good"
    assert by_symbol["TGT/USDT"]["verdict"] == "bad"
    assert "SOL/USDT" in store.good_symbols("mexc", "1h")
    assert "TGT/USDT" not in store.good_symbols("mexc", "1h")


def test_a_failed_ingestion_is_a_result_not_an_exception(client, store):
    result = ingest_symbol(client, store, "NOPE/USDT", INGEST, QUALITY)
    assert not result.ok
    assert "NOPE/USDT is not listed" in (result.error or "")
    assert store.last_ingest_errors("mexc", "1h")["NOPE/USDT"] == result.error


def test_universe_keeps_usdt_markets_and_says_why_others_go(client, store):
    universe = refresh_universe(client, store, IngestSettings(max_symbols=5))
    kept = universe.filter(pl.col("kept"))
    assert kept.height == 5
    assert (kept["quote"] == "USDT").all()
    dropped = universe.filter(~pl.col("kept"))
    assert dropped["reason"].str.len_chars().min() > 0
