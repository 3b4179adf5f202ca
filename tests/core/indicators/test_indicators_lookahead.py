"""No indicator looks ahead: the value at bar t is a function of bars 0..t only.

Two complementary checks over every column `add_indicators` produces: rewriting every bar after t
leaves rows 0..t bit-for-bit unchanged, and computing on the first t+1 bars alone gives the same rows
as computing on the whole history.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from xray_core.indicators import add_indicators, indicator_columns


def rewrite_after(frame: pl.DataFrame, cut: int, seed: int = 7) -> pl.DataFrame:
    """A copy of `frame` whose bars after row `cut` get new prices and volumes (still valid candles)."""
    rng = np.random.default_rng(seed)
    later = np.arange(frame.height) > cut
    factor = np.where(later, rng.uniform(0.9, 1.1, frame.height), 1.0)
    volume_factor = np.where(later, rng.uniform(0.2, 5.0, frame.height), 1.0)
    return frame.with_columns(
        *(pl.col(name) * factor for name in ("open", "high", "low", "close")),
        pl.col("volume") * volume_factor,
    )


@pytest.mark.parametrize("cut", [40, 250, 5_000, 10_997])
def test_rewriting_later_bars_leaves_every_earlier_value_unchanged(btc_frame: pl.DataFrame, cut: int):
    original = add_indicators(btc_frame)
    rewritten = add_indicators(rewrite_after(btc_frame, cut))
    for name in indicator_columns():
        before, after = original[name].to_numpy(), rewritten[name].to_numpy()
        np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1], err_msg=f"{name} looks ahead")
        # The rewrite did reach this indicator, so the equality above is not vacuous.
        assert not np.array_equal(before[cut + 1 :], after[cut + 1 :], equal_nan=True), name


@pytest.mark.parametrize("length", [34, 35, 1_000, 4_321])
def test_a_truncated_history_gives_the_same_values(btc_frame: pl.DataFrame, length: int):
    whole = add_indicators(btc_frame)
    prefix = add_indicators(btc_frame.head(length))
    for name in indicator_columns():
        np.testing.assert_array_equal(prefix[name].to_numpy(), whole[name].to_numpy()[:length],
                                      err_msg=f"{name} depends on bars after its own")
