"""How much each user commits on an entry, vectorised over users. The max position limit lives here:
it is not a block (see `xray_core.risk.limits`) but a cap on the entry size, so a user near their
limit still enters, only smaller."""

from __future__ import annotations

import numpy as np


def entry_notional(
    equity: np.ndarray,
    free_quote: np.ndarray,
    trade_percentage: np.ndarray,
    leverage: np.ndarray,
    margin_multiplier: np.ndarray,
    max_position_usd: np.ndarray,
    spot: bool = True,
) -> np.ndarray:
    """Quote amount each user commits on an entry: equity x trade_percentage x leverage / margin
    multiplier (margin kept back as a buffer), capped by the user's max position and, on spot where
    leverage cannot be borrowed, by the free quote balance."""
    notional = equity * trade_percentage * leverage / margin_multiplier
    notional = np.minimum(notional, max_position_usd)
    if spot:
        notional = np.minimum(notional, free_quote * 0.995)  # leave room for the taker fee
    return np.maximum(notional, 0.0)
