"""Calibrated drift: slow features are judged against how much windows of their own history differ."""

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from xray_core.learning.drift import calibrated_drift, psi


def _frame(values: np.ndarray, start_hour: int = 0) -> pl.DataFrame:
    first = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=start_hour)
    stamps = pl.datetime_range(first, first + timedelta(hours=len(values) - 1), "1h", eager=True)
    return pl.DataFrame({"timestamp": stamps, "slow": values[:, 0], "fast": values[:, 1]})


def test_a_slow_feature_in_a_steady_market_is_not_drift_but_a_shift_is():
    rng = np.random.default_rng(5)
    n = 3000
    slow = np.zeros(n)
    for t in range(1, n):  # stationary AR(1) with a long memory, like realised volatility
        slow[t] = 0.99 * slow[t - 1] + rng.normal()
    fast = rng.normal(size=n)
    data = np.column_stack([slow, fast])
    reference, recent = _frame(data[:-72]), _frame(data[-72:], start_hour=n - 72)
    assert psi(reference["slow"].to_numpy(), recent["slow"].to_numpy()) > 0.2  # raw PSI would fire
    report = calibrated_drift(reference, recent, ["slow", "fast"])
    assert not report["drifted"].any(), report

    shifted = recent.with_columns(pl.col("fast") + 3.0)
    report = calibrated_drift(reference, shifted, ["slow", "fast"])
    assert report.filter(pl.col("drifted"))["feature"].to_list() == ["fast"]
