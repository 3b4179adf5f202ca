"""Every user's money and positions as arrays (users x symbols), so one bar's decisions for 10,000
users are a few vector operations rather than 10,000 Python loops.

The exchange is the truth: reconciliation sets a user's balances from `fetch_balance`, and between
reconciliations each fill moves them (with the fee in the asset the exchange charged it in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from xray_core.trading.orders import Fill, Side


@dataclass(frozen=True)
class Sizing:
    """A user's own sizing and limits (the bundle's per-symbol profile sizing may override the first
    three)."""

    profile: str
    trade_percentage: float
    leverage: float
    margin_multiplier: float
    max_position_usd: float
    max_daily_loss: float
    max_drawdown: float


NUMERIC_SIZING = ("trade_percentage", "leverage", "margin_multiplier", "max_position_usd",
                  "max_daily_loss", "max_drawdown")


class Book:
    def __init__(self, quote: str = "USDT") -> None:
        self.quote = quote
        self.user_ids: list[str] = []
        self.user_index: dict[str, int] = {}
        self.symbols: list[str] = []
        self.symbol_index: dict[str, int] = {}
        self.cash = np.zeros(0)
        self.position = np.zeros((0, 0))
        self.sizing: list[Sizing] = []
        self.columns: dict[str, np.ndarray] = {n: np.zeros(0) for n in NUMERIC_SIZING}
        self.profile_names: list[str] = []
        self.profile_idx = np.zeros(0, dtype=np.int64)
        self.active = np.zeros(0, dtype=bool)

    # ---- shape -----------------------------------------------------------------------------------

    def set_users(self, users: Iterable[tuple[str, Sizing]]) -> None:
        """Make the rows exactly `users` (in order), keeping the balances of users already here."""
        users = list(users)
        old_cash, old_position, old_index = self.cash, self.position, self.user_index
        self.user_ids = [user_id for user_id, _ in users]
        self.user_index = {user_id: i for i, user_id in enumerate(self.user_ids)}
        self.sizing = [sizing for _, sizing in users]
        self.columns = {name: np.array([getattr(s, name) for s in self.sizing], dtype=np.float64)
                        for name in NUMERIC_SIZING}
        self.profile_names = sorted({s.profile for s in self.sizing})
        position_of = {name: k for k, name in enumerate(self.profile_names)}
        self.profile_idx = np.array([position_of[s.profile] for s in self.sizing], dtype=np.int64)
        self.cash = np.zeros(len(users))
        self.position = np.zeros((len(users), len(self.symbols)))
        self.active = np.ones(len(users), dtype=bool)
        for user_id, i in self.user_index.items():
            j = old_index.get(user_id)
            if j is not None:
                self.cash[i] = old_cash[j]
                self.position[i] = old_position[j]

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Make the columns `symbols` plus any symbol a user still holds (it must stay sellable)."""
        held = [s for s, j in self.symbol_index.items() if (self.position[:, j] > 0).any()]
        wanted = list(dict.fromkeys([*symbols, *held]))
        position = np.zeros((len(self.user_ids), len(wanted)))
        for k, symbol in enumerate(wanted):
            j = self.symbol_index.get(symbol)
            if j is not None:
                position[:, k] = self.position[:, j]
        self.symbols, self.position = wanted, position
        self.symbol_index = {s: k for k, s in enumerate(wanted)}

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    # ---- money -----------------------------------------------------------------------------------

    def equity(self, prices: np.ndarray) -> np.ndarray:
        """Quote cash plus positions at `prices` (one per symbol column; NaN counts as 0)."""
        return self.cash + self.position @ np.nan_to_num(prices)

    def set_balances(self, user_id: str, balances: Mapping[str, float]) -> None:
        """The exchange's totals for one user (assets of symbols not traded are ignored)."""
        i = self.user_index[user_id]
        self.cash[i] = float(balances.get(self.quote, 0.0))
        for symbol, j in self.symbol_index.items():
            self.position[i, j] = float(balances.get(symbol.split("/")[0], 0.0))

    def apply_fill(self, fill: Fill) -> None:
        i = self.user_index.get(fill.user_id)
        j = self.symbol_index.get(fill.symbol)
        if i is None or j is None:
            return
        base = fill.symbol.split("/")[0]
        sign = 1.0 if fill.side is Side.BUY else -1.0
        self.position[i, j] += sign * fill.amount
        self.cash[i] -= sign * fill.amount * fill.price
        if fill.fee_currency == base:
            self.position[i, j] -= fill.fee
        elif fill.fee_currency == self.quote:
            self.cash[i] -= fill.fee
