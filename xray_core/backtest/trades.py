"""Trade records: the kernels write rows of floats, `trades_frame` turns them into a table.

A trade is one position from its entry fill to its exit fill; a reversal is two trades (the close and
the new open share the same bar and price). A position still open at the last bar is reported as a
trade exiting at the last close without fee or slippage, with exit_reason "end" — the same valuation as
the final equity, so the pnl of all trades always adds up to final equity minus starting cash.

Columns: run (only for several runs), entry_time, exit_time (bar open times of the fill bars; for an
intrabar exit, the bar in which it happened), side ("long"/"short"), entry_price and exit_price (fill
prices after slippage), size (units of the base asset), pnl (quote currency, after both fees), return
(pnl / (size x entry_price / leverage): on the margin before the entry fee, vectorbt's trade return at
leverage 1), and exit_reason (signal, stop_loss, take_profit, liquidation, end).
"""

from __future__ import annotations

import numpy as np
import polars as pl

# Columns of a trade record row (float64; bars are indices into the run's bars).
ENTRY_BAR, EXIT_BAR, SIDE, ENTRY_PRICE, EXIT_PRICE, SIZE, PNL, RETURN, REASON = range(9)
N_FIELDS = 9

# Exit reasons as stored in the REASON column.
SIGNAL, STOP_LOSS, TAKE_PROFIT, LIQUIDATION, END = range(5)
REASONS: tuple[str, ...] = ("signal", "stop_loss", "take_profit", "liquidation", "end")


def empty_records() -> np.ndarray:
    return np.empty((0, N_FIELDS), dtype=np.float64)


def trades_frame(
    records: np.ndarray, timestamps_ms: np.ndarray, run: np.ndarray | None = None
) -> pl.DataFrame:
    """The trade table for `records` (rows as the kernels write them) of runs over `timestamps_ms`."""
    entry = records[:, ENTRY_BAR].astype(np.int64)
    exit_ = records[:, EXIT_BAR].astype(np.int64)
    side = records[:, SIDE]
    reason = records[:, REASON].astype(np.int64)
    columns: dict[str, pl.Series] = {}
    if run is not None:
        columns["run"] = pl.Series("run", run, dtype=pl.Int64)
    stamp = pl.Datetime("ms", "UTC")
    columns |= {
        "entry_time": pl.Series("entry_time", timestamps_ms[entry]).cast(stamp),
        "exit_time": pl.Series("exit_time", timestamps_ms[exit_]).cast(stamp),
        "side": pl.Series("side", np.where(side > 0, "long", "short"), dtype=pl.String),
        "entry_price": pl.Series("entry_price", records[:, ENTRY_PRICE]),
        "exit_price": pl.Series("exit_price", records[:, EXIT_PRICE]),
        "size": pl.Series("size", records[:, SIZE]),
        "pnl": pl.Series("pnl", records[:, PNL]),
        "return": pl.Series("return", records[:, RETURN]),
        "exit_reason": pl.Series(
            "exit_reason", np.asarray(REASONS, dtype=object)[reason].astype(str), dtype=pl.String
        ),
    }
    return pl.DataFrame(columns)
