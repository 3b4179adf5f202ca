"""Each user's entry size: an equity share, levered, within the user's max position and free cash."""

import numpy as np
import pytest

from xray_core.risk.sizing import entry_notional


def test_entry_size_respects_equity_share_max_position_and_free_cash():
    notional = entry_notional(
        equity=np.array([10_000.0, 10_000.0, 10_000.0]), free_quote=np.array([10_000.0, 10_000.0, 50.0]),
        trade_percentage=np.array([0.1, 0.5, 0.1]), leverage=np.array([1.0, 1.0, 1.0]),
        margin_multiplier=np.array([1.0, 1.0, 1.0]), max_position_usd=np.array([5_000.0, 2_000.0, 5_000.0]),
    )
    assert notional.tolist() == pytest.approx([1_000.0, 2_000.0, 50 * 0.995])
