"""Data-quality checks on candles, each a small pure function, and a verdict per symbol.

The checks are the ones a backtest silently depends on: unique increasing timestamps, gaps within
tolerance, consistent OHLC (high >= max(open, close), low <= min(open, close)), positive prices,
non-negative volume, enough bars, and freshness. `assess` runs them all and returns a `QualityReport`
whose verdict is "good" only when every blocking check passes; its `reason` names what failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import polars as pl

from xray_core.settings import QualitySettings
from xray_core.timeframes import timeframe_ms

Verdict = Literal["good", "bad"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    value: float | int | None = None
    blocking: bool = True  # a failed blocking check makes the symbol bad


@dataclass(frozen=True, slots=True)
class FeedAnomalies:
    """What the exchange sent that the store cleaned up: repeated bars, identical or not."""

    identical_duplicates: int = 0
    conflicting_duplicates: int = 0

    def __add__(self, other: FeedAnomalies) -> FeedAnomalies:
        return FeedAnomalies(
            self.identical_duplicates + other.identical_duplicates,
            self.conflicting_duplicates + other.conflicting_duplicates,
        )

    @staticmethod
    def of(raw: pl.DataFrame) -> FeedAnomalies:
        """Count repeated timestamps in a batch exactly as received."""
        if raw.height == raw["timestamp"].n_unique():
            return FeedAnomalies()
        repeated = raw.filter(pl.col("timestamp").is_duplicated())
        per_bar = repeated.group_by("timestamp").agg(
            pl.len().alias("copies"), pl.struct(pl.all().exclude("timestamp")).n_unique().alias("versions")
        )
        identical = per_bar.filter(pl.col("versions") == 1)
        conflicting = per_bar.filter(pl.col("versions") > 1)
        return FeedAnomalies(int((identical["copies"] - 1).sum()), int((conflicting["copies"] - 1).sum()))


@dataclass(frozen=True, slots=True)
class QualityReport:
    symbol: str
    timeframe: str
    bars: int
    first_ms: int | None
    last_ms: int | None
    checks: tuple[CheckResult, ...]

    @property
    def verdict(self) -> Verdict:
        return "good" if all(c.passed for c in self.checks if c.blocking) else "bad"

    @property
    def reason(self) -> str:
        failed = [c.detail for c in self.checks if c.blocking and not c.passed]
        return "; ".join(failed) if failed else "all checks passed"

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)


def check_unique_increasing(frame: pl.DataFrame, feed: FeedAnomalies | None = None) -> CheckResult:
    """Stored bars must be unique and increasing. Bars the exchange sent twice with identical values
    were de-duplicated on write and are only noted; a bar sent twice with different values is an
    error, because we cannot know which one is true."""
    ts = frame["timestamp"]
    duplicates = len(ts) - ts.n_unique()
    decreasing = int((ts.diff().dt.total_milliseconds() < 0).sum()) if len(ts) > 1 else 0
    conflicts = feed.conflicting_duplicates if feed else 0
    ok = duplicates == 0 and decreasing == 0 and conflicts == 0
    if ok:
        detail = "timestamps unique and increasing"
        if feed and feed.identical_duplicates:
            detail += f" (the feed repeated {feed.identical_duplicates} bars; de-duplicated)"
    else:
        detail = (
            f"{duplicates} duplicated and {decreasing} out-of-order timestamps stored, "
            f"{conflicts} bars sent twice with different values"
        )
    return CheckResult("unique_increasing_timestamps", ok, detail, duplicates + decreasing + conflicts)


def check_gaps(frame: pl.DataFrame, timeframe: str, settings: QualitySettings) -> CheckResult:
    """Missing bars between the first and the last bar, as a share and as the longest run."""
    if frame.height < 2:
        return CheckResult("gaps_within_tolerance", True, "too few bars to measure gaps", 0)
    step = timeframe_ms(timeframe)
    stamps = frame["timestamp"].unique().sort().dt.epoch("ms")
    deltas = stamps.diff().drop_nulls() // step
    missing = int((deltas - 1).clip(lower_bound=0).sum())
    longest = int(cast("int | None", (deltas - 1).max()) or 0)  # an integer column; None when empty
    expected = int((stamps[-1] - stamps[0]) // step) + 1
    ratio = missing / expected
    ok = ratio <= settings.max_missing_ratio and longest <= settings.max_gap_bars
    detail = f"{missing} of {expected} bars missing ({ratio:.1%}), longest gap {longest} bars" + (
        "" if ok else f" (tolerance {settings.max_missing_ratio:.1%}, {settings.max_gap_bars} bars)"
    )
    return CheckResult("gaps_within_tolerance", ok, detail, ratio)


def check_ohlc_consistent(frame: pl.DataFrame) -> CheckResult:
    high_bad = frame.filter(pl.col("high") < pl.max_horizontal("open", "close")).height
    low_bad = frame.filter(pl.col("low") > pl.min_horizontal("open", "close")).height
    ok = high_bad == 0 and low_bad == 0
    detail = (
        "high >= max(open, close) and low <= min(open, close)"
        if ok
        else (f"{high_bad} bars with high < max(open, close), {low_bad} with low > min(open, close)")
    )
    return CheckResult("ohlc_consistent", ok, detail, high_bad + low_bad)


def check_positive_prices(frame: pl.DataFrame) -> CheckResult:
    bad = frame.filter(
        pl.any_horizontal(
            [
                (pl.col(c) <= 0) | pl.col(c).is_null() | pl.col(c).is_nan()
                for c in ("open", "high", "low", "close")
            ]
        )
    ).height
    detail = "all prices positive" if bad == 0 else f"{bad} bars with a zero, negative or missing price"
    return CheckResult("positive_prices", bad == 0, detail, bad)


def check_volume(frame: pl.DataFrame) -> CheckResult:
    bad = frame.filter((pl.col("volume") < 0) | pl.col("volume").is_null() | pl.col("volume").is_nan()).height
    detail = "volume non-negative" if bad == 0 else f"{bad} bars with negative or missing volume"
    return CheckResult("non_negative_volume", bad == 0, detail, bad)


def check_enough_bars(frame: pl.DataFrame, settings: QualitySettings) -> CheckResult:
    ok = frame.height >= settings.min_bars
    detail = f"{frame.height} bars" + ("" if ok else f", fewer than the {settings.min_bars} needed")
    return CheckResult("enough_bars", ok, detail, frame.height)


def check_freshness(
    frame: pl.DataFrame, timeframe: str, now_ms: int, settings: QualitySettings
) -> CheckResult:
    """The newest closed bar should end no more than `freshness_bars` bars before `now_ms`."""
    if frame.is_empty():
        return CheckResult("fresh", False, "no bars at all", None)
    step = timeframe_ms(timeframe)
    last_close = int(frame["timestamp"].max().timestamp() * 1000) + step  # type: ignore[union-attr]
    behind = max(0, (now_ms - last_close) // step)
    ok = behind <= settings.freshness_bars
    detail = f"newest bar {behind} bars old" + (
        "" if ok else f" (stale: more than {settings.freshness_bars})"
    )
    return CheckResult("fresh", ok, detail, behind)


def assess(
    symbol: str,
    timeframe: str,
    frame: pl.DataFrame,
    now_ms: int,
    settings: QualitySettings,
    feed: FeedAnomalies | None = None,
) -> QualityReport:
    """Run every check on `frame` (one symbol's candles, any order) and return the report."""
    checks = (
        check_unique_increasing(frame, feed),
        check_gaps(frame, timeframe, settings),
        check_ohlc_consistent(frame),
        check_positive_prices(frame),
        check_volume(frame),
        check_enough_bars(frame, settings),
        check_freshness(frame, timeframe, now_ms, settings),
    )
    stamps = frame["timestamp"].dt.epoch("ms") if frame.height else None
    return QualityReport(
        symbol=symbol,
        timeframe=timeframe,
        bars=frame.height,
        first_ms=int(stamps.min()) if stamps is not None else None,  # type: ignore[arg-type]
        last_ms=int(stamps.max()) if stamps is not None else None,  # type: ignore[arg-type]
        checks=checks,
    )
