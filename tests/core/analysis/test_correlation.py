"""Correlation analysis: what each function promises, on constructed data with known answers and on
real candles (ADA/ETH/LTC against BTC, 5m, one shared window in January 2018; ADA misses 40 bars)."""

from dataclasses import FrozenInstanceError

import numpy as np
import polars as pl
import pytest

from xray_core.analysis.correlation import (
    aligned_closes,
    correlation_matrix,
    hierarchical_clusters,
    log_returns_matrix,
    rolling_correlation,
)
from xray_core.analysis.correlation_benchmark import beta_to, cross_correlation, lead_lag, rolling_beta
from xray_core.analysis.correlation_plot import correlation_heatmap_png
from xray_core.analysis.correlation_report import correlation_report
from xray_core.candles.schema import read_parquet
from xray_core.errors import ConfigError, DataError

BAR_MS = 300_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
BETAS = {"ETH/USDT": 1.3, "SOL/USDT": 1.8, "XRP/USDT": 0.6, "DOGE/USDT": 0.0}


def closes_of(returns: dict[str, np.ndarray], gaps: dict[str, list[int]] | None = None) -> pl.DataFrame:
    """Aligned 5m closes whose log returns are exactly `returns` (one more row than returns), with the
    closes at the row indices in `gaps` set to null."""
    n = len(next(iter(returns.values())))
    stamps = pl.Series("timestamp", START_MS + np.arange(n + 1) * BAR_MS)
    frame = pl.DataFrame({"timestamp": stamps.cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")})
    for symbol, r in returns.items():
        price = 100.0 * np.exp(np.r_[0.0, np.cumsum(r)])
        for row in (gaps or {}).get(symbol, []):
            price[row] = np.nan
        frame = frame.with_columns(pl.Series(symbol, price).fill_nan(None))
    return frame


def factor_model(n: int = 4000, seed: int = 1) -> dict[str, np.ndarray]:
    """BTC/USDT returns with 1% volatility and r_s = beta_s * r_btc + 0.5% independent noise."""
    rng = np.random.default_rng(seed)
    btc = rng.normal(0.0, 0.01, n)
    return {"BTC/USDT": btc} | {s: b * btc + rng.normal(0.0, 0.005, n) for s, b in BETAS.items()}


def two_groups(n: int = 3000, seed: int = 2) -> dict[str, np.ndarray]:
    """Two blocks of four symbols, each driven by its own independent factor (ρ≈0.8 inside, ≈0 across)."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (2, n))
    return {f"{group}{k}/USDT": factors[g] + rng.normal(0.0, 0.005, n)
            for g, group in enumerate("AB") for k in range(4)}


def delayed(n: int = 3000, lag: int = 2, seed: int = 3) -> dict[str, np.ndarray]:
    """LAGGER repeats BTC's return `lag` bars later (plus noise); NOISE is independent of BTC."""
    rng = np.random.default_rng(seed)
    btc = rng.normal(0.0, 0.01, n)
    lagger = np.r_[rng.normal(0.0, 0.01, lag), btc[:-lag]] + rng.normal(0.0, 0.005, n)
    return {"BTC/USDT": btc, "LAGGER/USDT": lagger, "NOISE/USDT": rng.normal(0.0, 0.01, n)}


@pytest.fixture(scope="module")
def real_closes(candles_dir) -> pl.DataFrame:
    return aligned_closes({name.replace("_", "/"): read_parquet(candles_dir / f"{name}-5m.parquet")
                           for name in ("ADA_BTC", "ETH_BTC", "LTC_BTC")})


# --- log returns and the missing-data policy -------------------------------------------------------------


def test_log_returns_are_log_price_ratios_stamped_with_the_later_bar():
    r = factor_model(n=100)
    returns = log_returns_matrix(closes_of(r))
    assert returns.symbols == ("BTC/USDT", *BETAS)
    np.testing.assert_allclose(returns.values, np.column_stack(list(r.values())), atol=1e-12)
    assert returns.timestamps.dtype == pl.Datetime("ms", "UTC")
    assert returns.timestamps[0].timestamp() * 1000 == START_MS + BAR_MS
    assert dict(returns.excluded) == {}


def test_a_missing_close_removes_the_returns_on_both_sides_and_is_never_bridged():
    returns = log_returns_matrix(closes_of(factor_model(n=100), gaps={"ETH/USDT": [10]}))
    eth = returns.values[:, returns.symbols.index("ETH/USDT")]
    assert np.flatnonzero(np.isnan(eth)).tolist() == [9, 10]  # returns into bars 10 and 11
    assert np.isfinite(np.delete(returns.values, returns.symbols.index("ETH/USDT"), axis=1)).all()


def test_aligned_closes_outer_joins_so_one_outage_costs_the_others_nothing(real_closes):
    assert real_closes.columns == ["timestamp", "ADA/BTC", "ETH/BTC", "LTC/BTC"]
    assert real_closes.height == 5760
    assert real_closes.null_count().row(0) == (0, 40, 0, 0)


def test_symbols_without_enough_data_are_excluded_with_a_reason():
    r = factor_model(n=200)
    r |= {"DEAD/USDT": np.zeros(200), "NEW/USDT": r["ETH/USDT"].copy()}
    closes = closes_of(r, gaps={"NEW/USDT": list(range(180))})
    closes = closes.with_columns(pl.lit(None, pl.Float64).alias("EMPTY/USDT"))
    returns = log_returns_matrix(closes, min_periods=30)
    assert returns.symbols == ("BTC/USDT", *BETAS)
    assert set(returns.excluded) == {"DEAD/USDT", "NEW/USDT", "EMPTY/USDT"}
    assert "constant" in returns.excluded["DEAD/USDT"]
    assert "only 20 returns" in returns.excluded["NEW/USDT"]
    assert returns.excluded["EMPTY/USDT"] == "no prices"


def _duplicate_first_row(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame.head(1), frame])


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda f: f.drop("timestamp"), "timestamp"),
        (lambda f: f.with_columns(pl.col("timestamp").cast(pl.Int64)), "timestamp"),
        (_duplicate_first_row, "repeat"),
        (lambda f: f.with_columns(pl.lit("x").alias("NAME/USDT")), "not numeric"),
        (lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(0.0).otherwise(pl.col("ETH/USDT"))
                                  .alias("ETH/USDT")), r"ETH/USDT: 1 close\(s\) not positive"),
        (lambda f: f.head(20), "only 20 rows"),
        (lambda f: f.select("timestamp"), "no symbol columns"),
        (lambda f: f.select("timestamp", pl.lit(None, pl.Float64).alias("A"), pl.lit(1.0).alias("B")),
         "no symbol has usable returns"),
    ],
    ids=["no-timestamp", "int-timestamp", "duplicates", "text-column", "zero-price", "too-few-rows",
         "no-symbols", "all-unusable"],
)
def test_malformed_closes_are_a_data_error(corrupt, message):
    with pytest.raises(DataError, match=message):
        log_returns_matrix(corrupt(closes_of(factor_model(n=100))))


def test_bad_parameters_are_a_config_error():
    returns = log_returns_matrix(closes_of(factor_model(n=100)))
    with pytest.raises(ConfigError, match="window"):
        correlation_matrix(returns, window=1)
    with pytest.raises(ConfigError, match="step"):
        rolling_correlation(returns, 20, step=0)
    with pytest.raises(ConfigError, match="not both"):
        hierarchical_clusters(np.eye(2), ["A", "B"], max_clusters=2, distance_threshold=1.0)
    with pytest.raises(DataError, match="longer than"):
        correlation_matrix(returns, window=500)


# --- correlation matrices ---------------------------------------------------------------------------------


def test_on_complete_data_the_matrix_is_numpys_corrcoef():
    returns = log_returns_matrix(closes_of(factor_model()))
    corr = correlation_matrix(returns)
    np.testing.assert_allclose(corr, np.corrcoef(returns.values.T), atol=1e-12)
    np.testing.assert_allclose(correlation_matrix(returns.values), corr)  # a bare T×N array works too


def test_real_candles_symmetric_unit_diagonal_and_corrcoef_where_complete(real_closes):
    returns = log_returns_matrix(real_closes)
    corr = correlation_matrix(returns)
    assert corr.shape == (3, 3)
    assert np.array_equal(corr, corr.T)
    assert np.array_equal(np.diag(corr), np.ones(3))
    assert np.all(np.abs(corr) <= 1.0)
    complete = returns.values[np.isfinite(returns.values).all(axis=1)]
    np.testing.assert_allclose(correlation_matrix(complete), np.corrcoef(complete.T), atol=1e-12)
    # pairwise-complete: ETH-LTC use every bar, ADA's gaps notwithstanding
    eth, ltc = returns.values[:, 1], returns.values[:, 2]
    assert np.isfinite(eth).all() and np.isfinite(ltc).all() and np.isnan(returns.values[:, 0]).sum() == 45
    assert corr[1, 2] == pytest.approx(np.corrcoef(eth, ltc)[0, 1], abs=1e-12)
    # and ADA's pairs use the bars where ADA has a return
    ada = returns.values[:, 0]
    both = np.isfinite(ada)
    assert corr[0, 1] == pytest.approx(np.corrcoef(ada[both], eth[both])[0, 1], abs=1e-12)


def test_pairs_sharing_fewer_than_min_periods_returns_are_nan():
    r = factor_model(n=300)
    closes = closes_of(r, gaps={"ETH/USDT": list(range(150, 301)), "SOL/USDT": list(range(0, 140))})
    returns = log_returns_matrix(closes, min_periods=30)
    corr = correlation_matrix(returns, min_periods=30)
    eth, sol = returns.symbols.index("ETH/USDT"), returns.symbols.index("SOL/USDT")
    assert np.isnan(corr[eth, sol]) and np.isnan(corr[sol, eth])
    assert np.isfinite(np.delete(corr[eth], sol)).all()


def test_the_windowed_matrix_is_corrcoef_of_the_last_window():
    returns = log_returns_matrix(closes_of(factor_model()))
    np.testing.assert_allclose(correlation_matrix(returns, window=288),
                               np.corrcoef(returns.values[-288:].T), atol=1e-12)


def test_rolling_correlation_is_a_long_frame_of_trailing_windows_ending_at_the_latest():
    returns = log_returns_matrix(closes_of(factor_model()))
    rolling = rolling_correlation(returns, 288, step=100)
    assert rolling.columns == ["timestamp", "symbol_a", "symbol_b", "corr", "n_obs"]
    assert rolling["timestamp"][-1] == returns.timestamps[-1]
    assert rolling.n_unique("timestamp") == len(range(returns.values.shape[0] - 1, 286, -100))
    assert rolling.filter(pl.col("timestamp") == rolling["timestamp"][0]).height == 10  # 5 symbols, 10 pairs
    latest = rolling.filter(pl.col("timestamp") == returns.timestamps[-1])
    window = np.corrcoef(returns.values[-288:].T)
    for a, b, corr in latest.select("symbol_a", "symbol_b", "corr").iter_rows():
        assert corr == pytest.approx(window[returns.symbols.index(a), returns.symbols.index(b)], abs=1e-9)
    end = 1000  # any window in the middle
    middle = rolling_correlation(returns, 288).filter(pl.col("timestamp") == returns.timestamps[end])
    expected = np.corrcoef(returns.values[end - 287 : end + 1].T)
    assert middle["corr"].to_numpy() == pytest.approx(expected[np.triu_indices(5, 1)], abs=1e-9)


def test_rolling_windows_with_gaps_use_each_pairs_shared_returns():
    r = factor_model(n=1000)
    rng = np.random.default_rng(6)
    gaps = {s: sorted(rng.choice(1001, 80, replace=False).tolist()) for s in r}
    returns = log_returns_matrix(closes_of(r, gaps=gaps))
    rolling = rolling_correlation(returns, 100, step=50)
    for stamp, a, b, corr, n_obs in rolling.filter(pl.col("symbol_a") == "ETH/USDT").iter_rows():
        end = returns.timestamps.to_list().index(stamp)
        x, y = (returns.values[end - 99 : end + 1, returns.symbols.index(s)] for s in (a, b))
        both = np.isfinite(x) & np.isfinite(y)
        assert n_obs == both.sum() < 100
        assert corr == pytest.approx(np.corrcoef(x[both], y[both])[0, 1], abs=1e-12)


def test_rolling_correlation_follows_a_regime_change_and_is_nan_over_a_flat_stretch():
    rng = np.random.default_rng(5)
    a = rng.normal(0.0, 0.01, 2000)
    b = np.r_[a[:1000], -a[1000:]] + rng.normal(0.0, 0.002, 2000)
    flat = rng.normal(0.0, 0.01, 2000)
    flat[1500:1800] = 0.0  # the price does not move for 300 bars
    rolling = rolling_correlation(log_returns_matrix(closes_of({"A": a, "B": b, "F": flat})), 200)
    ab = rolling.filter((pl.col("symbol_a") == "A") & (pl.col("symbol_b") == "B"))["corr"].to_numpy()
    assert ab[:800].min() > 0.9 and ab[-800:].max() < -0.9
    af = rolling.filter((pl.col("symbol_a") == "A") & (pl.col("symbol_b") == "F"))["corr"].to_numpy()
    # windows of 200 returns ending at rows 1699..1799 lie inside the flat stretch
    assert np.isnan(af[1699 - 199 : 1799 - 199 + 1]).all()
    assert np.isfinite(af[: 1500 - 199]).all()


# --- clusters ---------------------------------------------------------------------------------------------


def test_clusters_recover_two_independent_groups_and_are_contiguous_in_the_order():
    returns = log_returns_matrix(closes_of(two_groups()))
    corr = correlation_matrix(returns)
    for clusters in (hierarchical_clusters(corr, returns.symbols),  # default cut: Mantegna distance 1
                     hierarchical_clusters(corr, returns.symbols, max_clusters=2)):
        ids_of = {g: {clusters.labels[s] for s in returns.symbols if s.startswith(g)} for g in "AB"}
        assert len(ids_of["A"]) == len(ids_of["B"]) == 1 and ids_of["A"] != ids_of["B"]
        assert sorted(clusters.order) == sorted(returns.symbols)
        ids = [clusters.labels[s] for s in clusters.order]
        assert ids == sorted(ids) and ids[0] == 1  # numbered left to right, each a block


def test_a_tight_threshold_splits_everything_and_nan_counts_as_uncorrelated():
    corr = np.array([[1.0, 0.95, np.nan], [0.95, 1.0, 0.1], [np.nan, 0.1, 1.0]])
    clusters = hierarchical_clusters(corr, ["X", "Y", "Z"])
    assert clusters.labels["X"] == clusters.labels["Y"] != clusters.labels["Z"]
    tight = hierarchical_clusters(corr, ["X", "Y", "Z"], distance_threshold=0.01)
    assert sorted(tight.labels.values()) == [1, 2, 3]


# --- betas and lead-lag -------------------------------------------------------------------------------------


def test_betas_of_a_factor_model_are_recovered():
    returns = log_returns_matrix(closes_of(factor_model()))
    betas = beta_to(returns)
    assert betas.columns == ["symbol", "beta", "corr", "r2", "n_obs"]
    assert betas["symbol"].to_list() == list(BETAS)  # the benchmark gets no row
    for symbol, beta, corr, r2, n_obs in betas.iter_rows():
        true_corr = BETAS[symbol] * 0.01 / np.hypot(BETAS[symbol] * 0.01, 0.005)
        assert beta == pytest.approx(BETAS[symbol], abs=0.03)
        assert corr == pytest.approx(true_corr, abs=0.03)
        assert r2 == pytest.approx(corr**2)
        assert n_obs == 4000


def test_rolling_beta_ends_with_the_beta_of_the_last_window_and_sees_a_beta_change():
    r = factor_model()
    r["ETH/USDT"][2000:] = 0.5 * r["BTC/USDT"][2000:] + 0.001 * r["DOGE/USDT"][2000:]
    returns = log_returns_matrix(closes_of(r))
    rolling = rolling_beta(returns, 500, step=250)
    eth = rolling.filter(pl.col("symbol") == "ETH/USDT")
    assert eth["beta"][0] == pytest.approx(1.3, abs=0.05) and eth["beta"][-1] == pytest.approx(0.5, abs=0.05)
    last = beta_to(returns, window=500)
    latest = rolling.filter(pl.col("timestamp") == returns.timestamps[-1]).drop("timestamp")
    np.testing.assert_allclose(latest.select("beta", "corr", "r2").to_numpy(),
                               last.select("beta", "corr", "r2").to_numpy(), atol=1e-9)


def test_cross_correlation_sign_convention_positive_lag_is_the_benchmarks_past():
    returns = log_returns_matrix(closes_of(delayed()))
    xcorr = cross_correlation(returns, max_lag=3)
    btc, lagger = returns.values[:, 0], returns.values[:, 1]
    at = dict(xcorr.filter(pl.col("symbol") == "LAGGER/USDT").select("lag", "corr").iter_rows())
    assert at[2] == pytest.approx(np.corrcoef(btc[:-2], lagger[2:])[0, 1], abs=1e-12)  # btc[t-2] vs sym[t]
    assert at[-2] == pytest.approx(np.corrcoef(btc[2:], lagger[:-2])[0, 1], abs=1e-12)


def test_lead_lag_finds_that_the_benchmark_leads_by_two_bars():
    table = lead_lag(log_returns_matrix(closes_of(delayed())), max_lag=6)
    lagger, noise = table.row(0, named=True), table.row(1, named=True)
    assert lagger["symbol"] == "LAGGER/USDT" and lagger["best_lag"] == 2 and lagger["leads"] == "benchmark"
    assert lagger["corr_at_best_lag"] > 0.8 and abs(lagger["corr_at_zero"]) < 0.1
    assert noise["symbol"] == "NOISE/USDT" and noise["leads"] == "none"


def test_lead_lag_finds_a_symbol_that_leads_the_benchmark():
    r = delayed()
    swapped = {"BTC/USDT": r["LAGGER/USDT"], "LEADER/USDT": r["BTC/USDT"]}
    row = lead_lag(log_returns_matrix(closes_of(swapped)), max_lag=6).row(0, named=True)
    assert (row["best_lag"], row["leads"]) == (-2, "symbol")


def test_contemporaneous_moves_lead_nobody():
    row = lead_lag(log_returns_matrix(closes_of(factor_model())), max_lag=4).row(0, named=True)
    assert (row["symbol"], row["best_lag"], row["leads"]) == ("ETH/USDT", 0, "none")


def test_a_missing_benchmark_is_a_data_error_naming_the_reason():
    returns = log_returns_matrix(closes_of(two_groups()))
    with pytest.raises(DataError, match="BTC/USDT has no usable returns"):
        beta_to(returns)


# --- the report and its heatmap ------------------------------------------------------------------------


def test_the_report_bundles_matrix_clusters_betas_and_lead_lag():
    r = factor_model() | {k: v for k, v in delayed(n=4000).items() if k != "BTC/USDT"}
    r["LAGGER/USDT"] = np.r_[0.0, 0.0, r["BTC/USDT"][:-2]] + np.random.default_rng(9).normal(0, 0.005, 4000)
    closes = closes_of(r).with_columns(pl.lit(None, pl.Float64).alias("EMPTY/USDT"))
    report = correlation_report(closes, window=288, max_lag=4)
    assert report.symbols == ("BTC/USDT", *BETAS, "LAGGER/USDT", "NOISE/USDT")
    assert dict(report.excluded) == {"EMPTY/USDT": "no prices"} and dict(report.skipped) == {}
    np.testing.assert_allclose(report.matrix(), correlation_matrix(log_returns_matrix(closes)))
    assert report.correlation.columns == ["symbol", *report.symbols]
    assert report.clusters["ETH/USDT"] == report.clusters["SOL/USDT"] != report.clusters["NOISE/USDT"]
    betas = dict(report.betas.select("symbol", "beta").iter_rows())
    assert betas["SOL/USDT"] == pytest.approx(1.8, abs=0.03)
    leads = dict(report.lead_lag.select("symbol", "leads").iter_rows())
    assert leads["LAGGER/USDT"] == "benchmark" and leads["ETH/USDT"] == "none"
    assert report.recent_observations["BTC/USDT"].to_list() == [288] * len(report.symbols)
    with pytest.raises(FrozenInstanceError):
        report.benchmark = "ETH/USDT"

    tables = report.to_tables()
    assert set(tables) == {"summary", "correlation", "clusters", "betas", "lead_lag", "excluded", "skipped"}
    assert tables["correlation"].columns == ["sample", "symbol_a", "symbol_b", "corr", "n_obs"]
    pairs = tables["correlation"].group_by("sample").len().sort("sample").rows()
    assert pairs == [("full", 49), ("recent", 49)]  # every ordered pair of 7 symbols
    assert tables["betas"].filter(pl.col("sample") == "recent").height == 6
    assert tables["summary"].row(0, named=True)["n_clusters"] == len(set(report.clusters.values()))


def test_without_the_benchmark_the_report_skips_betas_and_lead_lag_with_a_reason(real_closes):
    report = correlation_report(real_closes, window=10_000)
    assert report.betas is None and report.lead_lag is None and report.recent_correlation is None
    assert set(report.skipped) == {"betas", "lead_lag", "recent"}
    assert "BTC/USDT" in report.skipped["betas"] and "longer than" in report.skipped["recent"]
    tables = report.to_tables()
    assert tables["betas"].is_empty() and tables["lead_lag"].columns[0] == "symbol"
    assert tables["skipped"].height == 3
    with_eth = correlation_report(real_closes, benchmark="ETH/BTC")
    assert with_eth.betas["symbol"].to_list() == ["ADA/BTC", "LTC/BTC"]
    assert with_eth.betas["n_obs"].to_list() == [5714, 5759]


def test_a_report_needs_two_usable_symbols():
    closes = closes_of(factor_model(n=100)).select("timestamp", "BTC/USDT", X=pl.lit(None, pl.Float64))
    with pytest.raises(DataError, match=r"need two usable symbols.*X: no prices"):
        correlation_report(closes)


def test_the_heatmap_is_a_png_for_25_symbols_and_for_real_candles(real_closes):
    rng = np.random.default_rng(4)
    factors = rng.normal(0.0, 0.01, (3, 1000))
    many = {f"S{k:02d}/USDT": factors[k % 3] + rng.normal(0.0, 0.006, 1000) for k in range(25)}
    report = correlation_report(closes_of(many), window=288)
    for png in (correlation_heatmap_png(report), correlation_heatmap_png(report, recent=True),
                correlation_heatmap_png(correlation_report(real_closes))):
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
