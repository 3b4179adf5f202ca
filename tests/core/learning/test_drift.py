"""Feature drift: PSI on the reference's quantile bins and the two-sample KS statistic."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp

from xray_core.errors import ConfigError, DataError
from xray_core.learning import drift_report, drifted, ks_2sample, psi


def test_psi_is_zero_for_identical_and_small_for_same_distribution_samples():
    rng = np.random.default_rng(1)
    reference = rng.normal(size=20_000)
    assert psi(reference, reference) == 0.0
    assert psi(reference, rng.permutation(reference)) == 0.0
    assert psi(reference, rng.normal(size=20_000)) < 0.01


def test_psi_is_large_for_a_shifted_or_rescaled_distribution():
    rng = np.random.default_rng(2)
    reference = rng.normal(size=10_000)
    assert psi(reference, reference + 1.0) > 0.5
    assert psi(reference, reference * 3.0) > 0.5
    assert 0.0 < psi(reference, reference + 0.1) < 0.1
    # values beyond the reference's range fall in the open outer bins: finite, large
    assert math.isfinite(psi(reference, np.full(100, 50.0)))
    assert psi(reference, np.full(100, 50.0)) > 5


def test_psi_handles_many_ties():
    rng = np.random.default_rng(3)
    reference = np.where(rng.uniform(size=5_000) < 0.8, 0.0, rng.uniform(-1, 1, 5_000))
    assert psi(reference, reference.copy()) == 0.0
    quiet = np.zeros(5_000)
    assert psi(reference, quiet) > 0.2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=3_000)
    b = rng.normal(0.05 * seed, 1.0 + 0.1 * seed, size=2_000)
    expected = ks_2samp(a, b, method="asymp")
    statistic, pvalue = ks_2sample(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-15)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-12)
    ties_a, ties_b = np.round(a), np.round(b)  # discrete values: ties across the samples
    expected = ks_2samp(ties_a, ties_b, method="asymp")
    assert ks_2sample(ties_a, ties_b) == pytest.approx((expected.statistic, expected.pvalue))
    # the statistic is the same whatever scipy's p-value method
    assert statistic == pytest.approx(ks_2samp(a, b).statistic, abs=1e-15)


def test_drift_report_and_drifted():
    rng = np.random.default_rng(4)
    reference = pl.DataFrame({"stable": rng.normal(size=5_000), "shifted": rng.normal(size=5_000),
                              "gone": rng.normal(size=5_000)})
    recent = pl.DataFrame({"stable": rng.normal(size=1_000), "shifted": rng.normal(0.8, 1.0, size=1_000),
                           "gone": np.full(1_000, np.nan)})
    report = drift_report(reference, recent, ["stable", "shifted", "gone"])
    assert report.columns == ["feature", "psi", "ks", "ks_pvalue", "n_reference", "n_recent"]
    assert report["feature"].to_list() == ["stable", "shifted", "gone"]
    row = report.row(1, named=True)
    assert row["psi"] > 0.2 and row["ks"] > 0.2 and row["ks_pvalue"] < 1e-10
    assert report.row(0, named=True)["ks_pvalue"] > 1e-3
    assert report.row(2, named=True)["n_recent"] == 0 and math.isnan(report.row(2, named=True)["psi"])
    assert drifted(report) == ["shifted"]
    assert drifted(report, psi_threshold=None, ks_threshold=0.2) == ["shifted"]
    assert drifted(report, psi_threshold=100.0, ks_threshold=None) == []
    with pytest.raises(ConfigError):
        drifted(report, psi_threshold=None, ks_threshold=None)
    with pytest.raises(DataError, match="recent window lacks"):
        drift_report(reference, recent.drop("gone"), ["gone"])
    with pytest.raises(ConfigError):
        psi(np.arange(10.0), np.arange(10.0), bins=1)
