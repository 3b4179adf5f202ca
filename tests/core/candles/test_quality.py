"""Quality checks: each rule on real data and on data broken in exactly one way."""

import polars as pl
import pytest

from xray_core.candles.quality import FeedAnomalies, assess
from xray_core.candles.schema import read_parquet
from xray_core.settings import QualitySettings

SETTINGS = QualitySettings(min_bars=100)
MINUTE = 60_000


def _now_after(frame: pl.DataFrame, step_ms: int, bars: int = 0) -> int:
    return int(frame["timestamp"].max().timestamp() * 1000) + step_ms * (bars + 1)


def test_clean_real_data_is_good(btc_5m):
    report = assess("BTC/USDT", "5m", btc_5m, _now_after(btc_5m, 5 * MINUTE), SETTINGS)
    assert report.verdict == "good", report.reason
    assert report.bars == btc_5m.height


def test_real_data_with_gaps_is_bad_and_says_how_many(candles_dir):
    frame = read_parquet(candles_dir / "UNITTEST_BTC-1m.parquet")
    report = assess("UNITTEST/BTC", "1m", frame, _now_after(frame, MINUTE), SETTINGS)
    assert report.verdict == "bad"
    assert "717 of 14398 bars missing" in report.reason


def test_each_defect_fails_its_own_check(btc_5m):
    now = _now_after(btc_5m, 5 * MINUTE)
    broken = {
        "positive_prices": btc_5m.with_columns(
            pl.when(pl.int_range(pl.len()) == 10).then(0.0).otherwise(pl.col("low")).alias("low")
        ),
        "ohlc_consistent": btc_5m.with_columns(
            pl.when(pl.int_range(pl.len()) == 10)
            .then(pl.col("low") / 2)
            .otherwise(pl.col("high"))
            .alias("high")
        ),
        "non_negative_volume": btc_5m.with_columns(
            pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(pl.col("volume")).alias("volume")
        ),
        "unique_increasing_timestamps": pl.concat([btc_5m, btc_5m.slice(100, 1)]),
        "gaps_within_tolerance": btc_5m.filter(
            (pl.int_range(pl.len()) < 100) | (pl.int_range(pl.len()) > 120)
        ),
        "enough_bars": btc_5m.head(50),
    }
    for check, frame in broken.items():
        report = assess("BTC/USDT", "5m", frame, now, SETTINGS)
        failed = {c.name for c in report.checks if not c.passed}
        assert check in failed, check
        assert report.verdict == "bad"
        assert report.check(check).detail in report.reason


def test_stale_data_is_bad(btc_5m):
    now = _now_after(btc_5m, 5 * MINUTE, bars=SETTINGS.freshness_bars + 1)
    report = assess("BTC/USDT", "5m", btc_5m, now, SETTINGS)
    assert report.check("fresh").passed is False
    assert "stale" in report.reason


def test_feed_repeats_identical_bars_are_noted_conflicting_ones_fail(btc_5m):
    now = _now_after(btc_5m, 5 * MINUTE)
    same = FeedAnomalies.of(pl.concat([btc_5m.head(10), btc_5m.slice(3, 2)]))
    assert same == FeedAnomalies(identical_duplicates=2, conflicting_duplicates=0)
    report = assess("BTC/USDT", "5m", btc_5m, now, SETTINGS, same)
    assert report.verdict == "good"
    assert "repeated 2 bars" in report.check("unique_increasing_timestamps").detail

    changed = btc_5m.slice(3, 1).with_columns(pl.col("close") * 1.01)
    conflicting = FeedAnomalies.of(pl.concat([btc_5m.head(10), changed]))
    assert conflicting == FeedAnomalies(identical_duplicates=0, conflicting_duplicates=1)
    assert assess("BTC/USDT", "5m", btc_5m, now, SETTINGS, conflicting).verdict == "bad"


@pytest.mark.parametrize("rows", [0, 1])
def test_tiny_frames_do_not_crash(btc_5m, rows):
    frame = btc_5m.head(rows)
    report = assess("BTC/USDT", "5m", frame, _now_after(btc_5m, 5 * MINUTE), SETTINGS)
    assert report.verdict == "bad"
    assert report.check("enough_bars").passed is False
