"""Feature drift between a reference window (what the model was trained on) and a recent one.

A retraining sensor should fire when the inputs no longer look like the training data, not only on a
calendar. Two complementary measures per feature:

* PSI, the population stability index: sum over bins of (q - p) ln(q / p), p and q the reference's and
  the recent window's shares per bin. Bins are the reference's deciles (`bins` quantiles), so each
  holds ~1/bins of the reference and PSI weighs every part of its distribution alike; duplicate edges
  (a feature with many ties, e.g. sentiment 0 without news) are merged, and a value equal to an edge
  falls in the bin above it. The outer bins are open, so recent values outside the reference's range
  count in them. Shares are floored at 1e-4 so an empty bin gives a large, finite term instead of inf.
  Rule of thumb: < 0.1 stable, 0.1–0.2 moderate, > 0.2 a significant shift.
* KS: the two-sample Kolmogorov–Smirnov statistic (largest gap between the empirical CDFs; equal to
  scipy.stats.ks_2samp's) with its asymptotic two-sided p-value (scipy's method="asymp": kstwo.sf(D,
  round(n m / (n + m)))). With thousands of rows the p-value flags even tiny shifts, so `drifted` uses
  the statistic itself.

Non-finite values are ignored; a feature with no finite value in either window gets NaN measures, and
NaN never counts as drifted (a missing feature is a data problem, reported elsewhere).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.stats import kstwo

from xray_core.errors import ConfigError, DataError
from xray_core.learning.dataset import FEATURES

PSI_FLOOR = 1e-4


def _finite(values: np.ndarray | pl.Series) -> np.ndarray:
    array = np.asarray(values.to_numpy() if isinstance(values, pl.Series) else values, dtype=np.float64)
    return array[np.isfinite(array)]


def psi(reference: np.ndarray | pl.Series, recent: np.ndarray | pl.Series, bins: int = 10) -> float:
    """Population stability index of `recent` against `reference` on the reference's quantile bins."""
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ConfigError(f"psi bins must be a whole number >= 2, got {bins!r}")
    ref, new = _finite(reference), _finite(recent)
    if ref.size == 0 or new.size == 0:
        return math.nan
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1) / ref.size
    q = np.bincount(np.searchsorted(edges, new, side="right"), minlength=edges.size + 1) / new.size
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def ks_2sample(reference: np.ndarray | pl.Series, recent: np.ndarray | pl.Series) -> tuple[float, float]:
    """(KS statistic, asymptotic two-sided p-value); (NaN, NaN) when a sample is empty."""
    a, b = np.sort(_finite(reference)), np.sort(_finite(recent))
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan
    pooled = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, pooled, side="right") / a.size
    gap = cdf_a - np.searchsorted(b, pooled, side="right") / b.size
    statistic = float(np.max(np.abs(gap)))
    m, n = sorted([float(a.size), float(b.size)], reverse=True)
    pvalue = float(np.clip(kstwo.sf(statistic, np.round(m * n / (m + n))), 0.0, 1.0))
    return statistic, pvalue


def drift_report(
    reference: pl.DataFrame, recent: pl.DataFrame, features: Sequence[str] | None = None, bins: int = 10
) -> pl.DataFrame:
    """One row per feature: feature, psi, ks, ks_pvalue, n_reference, n_recent (finite values used).
    `features` defaults to the dataset's FEATURES."""
    features = FEATURES if features is None else features
    for name, frame in (("reference", reference), ("recent", recent)):
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise DataError(
                f"{name} window lacks feature column(s) {', '.join(missing)}",
                "compare frames built with the same feature set",
            )
    rows = []
    for feature in features:
        ref, new = reference[feature].cast(pl.Float64), recent[feature].cast(pl.Float64)
        ks, pvalue = ks_2sample(ref, new)
        rows.append(
            {
                "feature": feature,
                "psi": psi(ref, new, bins),
                "ks": ks,
                "ks_pvalue": pvalue,
                "n_reference": _finite(ref).size,
                "n_recent": _finite(new).size,
            }
        )
    schema = {
        "feature": pl.String,
        "psi": pl.Float64,
        "ks": pl.Float64,
        "ks_pvalue": pl.Float64,
        "n_reference": pl.Int64,
        "n_recent": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema)


def drifted(
    report: pl.DataFrame, psi_threshold: float | None = 0.2, ks_threshold: float | None = 0.1
) -> list[str]:
    """Features whose PSI exceeds psi_threshold or whose KS statistic exceeds ks_threshold (None
    disables that test), in the report's order. NaN measures never count."""
    if psi_threshold is None and ks_threshold is None:
        raise ConfigError("drifted needs psi_threshold or ks_threshold", "set at least one of them")
    flag = pl.lit(False)
    if psi_threshold is not None:
        flag = flag | (pl.col("psi").fill_nan(None) > psi_threshold).fill_null(False)
    if ks_threshold is not None:
        flag = flag | (pl.col("ks").fill_nan(None) > ks_threshold).fill_null(False)
    return report.filter(flag)["feature"].to_list()


def calibrated_drift(
    reference: pl.DataFrame,
    recent: pl.DataFrame,
    features: Sequence[str],
    psi_threshold: float = 0.2,
    windows: int = 30,
    quantile: float = 0.95,
) -> pl.DataFrame:
    """PSI of the recent window against how much windows of the same length normally differ.

    Features such as realised volatility or RSI change slowly, so a few days of them never look like
    months of them: their raw PSI is large even in a steady market. The usual size of that mismatch is
    measured on `windows` stretches of the reference with as many timestamps as the recent window (each
    against the whole reference); a feature has drifted when its PSI exceeds both `psi_threshold` and
    the `quantile` of those. Columns: feature, psi, psi_normal, drifted."""
    stamps = reference["timestamp"].unique().sort()
    span = recent["timestamp"].n_unique()
    starts = np.linspace(0, max(0, len(stamps) - span), num=min(windows, max(1, len(stamps) - span + 1)))
    rows = []
    for feature in features:
        full = reference[feature].to_numpy()
        normal = []
        for start in starts.astype(int):
            lo, hi = stamps[int(start)], stamps[min(int(start) + span, len(stamps)) - 1]
            window = reference.filter(pl.col("timestamp").is_between(lo, hi))[feature].to_numpy()
            normal.append(psi(full, window))
        finite = [v for v in normal if math.isfinite(v)]
        baseline = float(np.quantile(finite, quantile)) if finite else math.nan
        value = psi(full, recent[feature].to_numpy())
        limit = max(psi_threshold, baseline) if math.isfinite(baseline) else psi_threshold
        rows.append(
            {
                "feature": feature,
                "psi": value,
                "psi_normal": baseline,
                "drifted": bool(math.isfinite(value) and value > limit),
            }
        )
    return pl.DataFrame(
        rows,
        schema={"feature": pl.String, "psi": pl.Float64, "psi_normal": pl.Float64, "drifted": pl.Boolean},
    )
