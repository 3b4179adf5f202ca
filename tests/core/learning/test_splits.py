"""Purged walk-forward splits: ordered test blocks, no training label reaching a test bar."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from xray_core.errors import ConfigError, DataError
from xray_core.learning import fold_column, purged_walk_forward


def stacked_stamps(n_bars: int, symbols: int = 3, bar_ms: int = 3_600_000, seed: int = 5) -> np.ndarray:
    """Row timestamps of a stacked frame: every symbol on one bar grid, a few rows missing, shuffled."""
    rng = np.random.default_rng(seed)
    stamps = np.repeat(1_700_000_000_000 + np.arange(n_bars, dtype=np.int64) * bar_ms, symbols)
    keep = rng.uniform(size=stamps.size) > 0.05
    return rng.permutation(stamps[keep])


@pytest.mark.parametrize(("n_folds", "horizon", "embargo"), [(5, 12, 0), (3, 4, 10), (1, 0, 0)])
def test_folds_are_ordered_purged_and_sized_as_documented(n_folds, horizon, embargo):
    stamps = stacked_stamps(1_000)
    unique = np.unique(stamps)
    index = np.searchsorted(unique, stamps)  # each row's bar index
    folds = purged_walk_forward(stamps, n_folds, horizon, embargo, min_train_fraction=0.4)
    assert len(folds) == n_folds
    initial = int(unique.size * 0.4)
    blocks = np.array_split(np.arange(initial, unique.size), n_folds)
    previous_train = 0
    for fold, block in zip(folds, blocks, strict=True):
        train, test = fold  # unpacks as a pair
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
        # the test block is exactly the rows of its bars: every symbol shares the boundaries
        np.testing.assert_array_equal(np.flatnonzero(np.isin(index, block)), test)
        # purge: each training label window [i, i + 1 + horizon] ends before the first test bar
        assert index[train].max() + 1 + horizon + embargo < index[test].min()
        assert index[train].max() == block[0] - horizon - 2 - embargo
        np.testing.assert_array_equal(train, np.flatnonzero(index < block[0] - horizon - 1 - embargo))
        assert not set(train) & set(test)
        assert train.size >= previous_train  # expanding window
        previous_train = train.size
    tests = [fold.test for fold in folds]
    assert all(index[a].max() < index[b].min() for a, b in itertools.pairwise(tests))
    column = fold_column(stamps.size, folds)
    assert (column[index < initial] == -1).all() and (column[index >= initial] >= 0).all()


def test_datetime_series_and_numpy_datetimes_give_the_same_folds():
    stamps = np.sort(stacked_stamps(300))
    series = pl.Series("timestamp", stamps).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    as_int = purged_walk_forward(stamps, 3, 5)
    as_datetime64 = stamps.astype("datetime64[ms]")
    for other in (purged_walk_forward(series, 3, 5), purged_walk_forward(as_datetime64, 3, 5)):
        for a, b in zip(as_int, other, strict=True):
            np.testing.assert_array_equal(a.train, b.train)
            np.testing.assert_array_equal(a.test, b.test)


def test_too_little_data_says_how_much():
    with pytest.raises(DataError, match=r"20 distinct timestamps are too few for 5 folds: 10 initial"):
        purged_walk_forward(np.arange(20), 5, 12)
    with pytest.raises(DataError, match="3 are left for the test blocks"):
        purged_walk_forward(np.arange(6), 4, 0)


@pytest.mark.parametrize("kwargs", [{"n_folds": 0}, {"horizon_bars": -1}, {"embargo_bars": 1.5},
                                    {"min_train_fraction": 1.0}, {"min_train_fraction": 0}])
def test_bad_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        purged_walk_forward(np.arange(1_000), **kwargs)
