"""Candles through stock ccxt: paging, the deliberately broken markets, and determinism."""

from __future__ import annotations

import itertools
import time
from collections import Counter

import ccxt
import numpy as np
import pytest

from xray_sim.exchange.market import SyntheticMarket

MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def _page(client, symbol: str, timeframe: str, start: int, end: int) -> list[list[float]]:
    """fetch_ohlcv page by page over [start, end), 1000 bars a call, as a downloader does."""
    step = client.parse_timeframe(timeframe) * 1000
    rows: list[list[float]] = []
    cursor = start
    while cursor < end:
        until = min(cursor + 1000 * step, end) - 1
        page = client.fetch_ohlcv(symbol, timeframe, since=cursor, limit=1000, params={"until": until})
        if not page:
            break
        rows += page
        cursor = page[-1][0] + step
    return rows


def test_paging_5000_minute_bars_misses_and_repeats_nothing(mexc):
    now = mexc.fetch_time()
    end = now - now % MINUTE
    start = end - 5500 * MINUTE
    rows = _page(mexc, "BTC/USDT", "1m", start, end)
    assert [row[0] for row in rows] == list(range(start, end, MINUTE))
    closes = np.array([row[4] for row in rows])
    assert np.all(closes > 0)
    assert np.all(np.array([row[1] for row in rows[1:]]) == closes[:-1])  # each bar opens at the last close


def test_tgt_shows_its_gaps_duplicates_and_zero_prices(mexc):
    now = mexc.fetch_time()
    end = now - now % MINUTE
    rows = _page(mexc, "TGT/USDT", "1m", end - 4 * DAY, end)
    stamps = [row[0] for row in rows]
    repeated = [t for t, n in Counter(stamps).items() if n > 1]
    assert repeated, "the feed repeats some bars"
    distinct = sorted(set(stamps))
    assert any(b - a > MINUTE for a, b in itertools.pairwise(distinct)), "runs of bars are missing"
    assert any(row[3] == 0 or row[4] == 0 for row in rows), "some bars trade at zero"


def test_srm_stops_at_its_halt_and_refuses_orders(emulator, mexc):
    halted = emulator.state.market.halted_from_ms
    assert halted is not None
    rows = mexc.fetch_ohlcv("SRM/USDT", "1h", since=halted - 48 * HOUR, limit=1000,
                            params={"until": halted + 72 * HOUR})
    assert rows and rows[-1][0] == halted - HOUR  # the last bar is the one before the halt
    assert all(row[0] < halted for row in rows)
    assert mexc.fetch_ohlcv("SRM/USDT", "1m", limit=10) == []  # nothing recent
    with pytest.raises(ccxt.ExchangeError, match="30000"):
        mexc.create_order("SRM/USDT", "market", "buy", 100)


def test_the_same_seed_gives_the_same_bars_and_another_seed_other_bars(start_custom_emulator, mexc_at):
    start_ms = 1_750_000_000_000
    first, same, other = (start_custom_emulator(seed=seed, start_ms=start_ms) for seed in (11, 11, 12))
    since = start_ms - start_ms % HOUR - 200 * HOUR
    fetched = [mexc_at(e.base_url).fetch_ohlcv("ETH/USDT", "1h", since=since, limit=150,
                                               params={"until": since + 150 * HOUR - 1})
               for e in (first, same, other)]
    assert len(fetched[0]) == 150
    assert fetched[0] == fetched[1]
    assert [row[4] for row in fetched[0]] != [row[4] for row in fetched[2]]


def test_bars_do_not_depend_on_when_the_market_started():
    day = 1_750_000_000_000 - 1_750_000_000_000 % DAY
    early = SyntheticMarket(seed=3, start_ms=day)
    late = SyntheticMarket(seed=3, start_ms=day + 10 * DAY)
    span = (day - 2 * DAY, day - DAY)
    a = early.bars("BTC/USDT", "5m", *span, now_ms=day)
    b = late.bars("BTC/USDT", "5m", *span, now_ms=day + 10 * DAY)
    assert len(a) == 288 and np.array_equal(a.close, b.close) and np.array_equal(a.volume, b.volume)


def test_a_fast_clock_runs_the_market_ahead_of_the_wall_clock(start_custom_emulator, mexc_at):
    emulator = start_custom_emulator(speed=600)  # ten market minutes per wall second
    client = mexc_at(emulator.base_url, api_key=None)
    first = client.fetch_time()
    time.sleep(0.2)
    assert client.fetch_time() - first >= 600 * 200  # at least two market minutes later
    latest = client.fetch_ohlcv("BTC/USDT", "1m", limit=3)  # without since: the market's own "now"
    assert first < latest[-1][0] <= client.fetch_time()  # the bar forming now, by the market clock
