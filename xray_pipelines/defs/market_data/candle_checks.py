"""The data-quality checks on `candles`, one Dagster check per rule in xray_core.candles.quality.

They are evaluated by the `candles` asset itself while the data is in hand (no second read), and
recorded per symbol partition. ERROR severity marks a check that makes the symbol unusable."""

import dagster as dg

from xray_core.candles.quality import QualityReport

CANDLE_CHECKS: dict[str, str] = {
    "unique_increasing_timestamps": "Stored timestamps are unique and increasing; the feed sent no "
    "conflicting repeats",
    "gaps_within_tolerance": "Missing bars stay within XRAY_QUALITY_MAX_MISSING_RATIO and MAX_GAP_BARS",
    "ohlc_consistent": "high >= max(open, close) and low <= min(open, close) on every bar",
    "positive_prices": "Every price is positive and present",
    "non_negative_volume": "Every volume is zero or more and present",
    "enough_bars": "At least XRAY_QUALITY_MIN_BARS bars in the history window",
    "fresh": "The newest bar is at most XRAY_QUALITY_FRESHNESS_BARS bars old",
}


def candle_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, description=text) for name, text in CANDLE_CHECKS.items()]


def check_results(report: QualityReport) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=check.name,
            passed=check.passed,
            severity=dg.AssetCheckSeverity.ERROR if check.blocking else dg.AssetCheckSeverity.WARN,
            description=check.detail,
            metadata={
                "symbol": report.symbol,
                "value": check.value if check.value is not None else "n/a",
                "detail": check.detail,
            },
        )
        for check in report.checks
    ]


def failed_results(reason: str) -> list[dg.AssetCheckResult]:
    """When no data could be assessed, every check fails with the same reason."""
    return [
        dg.AssetCheckResult(
            check_name=name, passed=False, severity=dg.AssetCheckSeverity.ERROR, description=reason
        )
        for name in CANDLE_CHECKS
    ]
