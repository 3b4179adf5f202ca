"""Every user's money and positions as arrays (users x symbols), so one bar's decisions for 10,000
users are a few vector operations rather than 10,000 Python loops.

A position is what X-Ray bought for the user and still holds: the journal's fills on the symbol (bought
minus sold, less fees paid in the base), capped by what the exchange says the account holds. Coins the
user held before, or keeps beside X-Ray, are neither sold by an exit nor counted in equity; coins
missing from the account (withdrawn) are not sold twice. Quote cash is the exchange's. Reconciliation
sets the exchange's side (`set_balances`); between reconciliations each fill moves both sides.

Prices are the last known close of every column, kept across ticks: a symbol whose candles failed,
whose close is null, or that left the bundle while a user still holds it is valued at its last known
close, never at zero. Equity with a held symbol never priced (or balances not read yet) is NaN —
unknown, which the risk limits leave alone — rather than a crash to zero.

Orders in doubt (sent, not settled: `set_pending`) count against the limits: an unsettled buy as
committed cash and as held for the max position, an unsettled sell as already sold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xray_core.trading.orders import Fill, Order, Side


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
# Per user x symbol arrays, carried together when users or symbols change (fill: a new cell's value).
_CELLS = {"position": 0.0, "held": 0.0, "balance": np.nan, "pending_buy": 0.0, "pending_sell": 0.0}


class Book:
    def __init__(self, quote: str = "USDT") -> None:
        self.quote = quote
        self.user_ids: list[str] = []
        self.user_index: dict[str, int] = {}
        self.symbols: list[str] = []
        self.symbol_index: dict[str, int] = {}
        self.cash = np.zeros(0)  # NaN: the exchange's balances not read yet
        self.transfers = np.zeros(0)  # net deposits less withdrawals in the balances read (`transfers`)
        self.position = np.zeros((0, 0))  # min(held, balance): what decisions sell and equity counts
        self.held = np.zeros((0, 0))  # the journal's fills: what X-Ray bought and still holds
        self.balance = np.zeros((0, 0))  # the base currency's exchange total (NaN: not read yet)
        self.pending_buy = np.zeros((0, 0))  # base amounts of buys in doubt (sent, not settled)
        self.pending_sell = np.zeros((0, 0))  # base amounts of sells in doubt
        self.price = np.zeros(0)  # last known close per symbol (NaN: never known)
        self.exchange_totals: list[dict[str, float] | None] = []  # per user: every asset, as last read
        self.sizing: list[Sizing] = []
        self.columns: dict[str, np.ndarray] = {n: np.zeros(0) for n in NUMERIC_SIZING}
        self.profile_names: list[str] = []
        self.profile_idx = np.zeros(0, dtype=np.int64)
        self.active = np.zeros(0, dtype=bool)

    # ---- shape -----------------------------------------------------------------------------------

    def set_users(self, users: Iterable[tuple[str, Sizing]]) -> None:
        """Make the rows exactly `users` (in order), keeping the balances of users already here (a new
        user's are unknown until `set_balances`)."""
        users = list(users)
        old_index = self.user_index
        self.user_ids = [user_id for user_id, _ in users]
        self.user_index = {user_id: i for i, user_id in enumerate(self.user_ids)}
        self.sizing = [sizing for _, sizing in users]
        self.columns = {name: np.array([getattr(s, name) for s in self.sizing], dtype=np.float64)
                        for name in NUMERIC_SIZING}
        self.profile_names = sorted({s.profile for s in self.sizing})
        position_of = {name: k for k, name in enumerate(self.profile_names)}
        self.profile_idx = np.array([position_of[s.profile] for s in self.sizing], dtype=np.int64)
        self.active = np.ones(len(users), dtype=bool)
        rows = np.array([old_index.get(user_id, -1) for user_id in self.user_ids], dtype=np.int64)
        known = rows >= 0
        self.cash = np.where(known, self.cash[np.where(known, rows, 0)] if len(self.cash) else 0.0, np.nan)
        self.transfers = np.where(known, self.transfers[np.where(known, rows, 0)] if len(self.transfers)
                                  else 0.0, 0.0)
        self.exchange_totals = [self.exchange_totals[j] if j >= 0 else None for j in rows]
        for name, fill in _CELLS.items():
            old = getattr(self, name)
            new = np.full((len(users), len(self.symbols)), fill)
            if len(old):
                new[known] = old[rows[known]]
            setattr(self, name, new)

    def set_symbols(self, symbols: Iterable[str]) -> None:
        """Make the columns `symbols` plus any symbol a user still holds (it must stay priced and
        sellable after it leaves the bundle)."""
        wanted = list(dict.fromkeys([*symbols, *self.held_symbols()]))
        if wanted == self.symbols:
            return
        columns = [self.symbol_index.get(symbol, -1) for symbol in wanted]
        for name, fill in _CELLS.items():
            old = getattr(self, name)
            new = np.full((len(self.user_ids), len(wanted)), fill)
            for k, j in enumerate(columns):
                if j >= 0:
                    new[:, k] = old[:, j]
            setattr(self, name, new)
        for k, j in enumerate(columns):  # a new column's cap: the balances as last read
            if j < 0:
                base = wanted[k].split("/")[0]
                self.balance[:, k] = [np.nan if totals is None else float(totals.get(base, 0.0))
                                      for totals in self.exchange_totals]
        self.price = np.array([self.price[j] if j >= 0 else np.nan for j in columns], dtype=np.float64)
        self.symbols = wanted
        self.symbol_index = {s: k for k, s in enumerate(wanted)}

    def held_symbols(self) -> list[str]:
        """Symbols some user holds (per the journal or the cap) or has an order in doubt on."""
        if not self.symbols:
            return []
        busy = (self.position > 0) | (self.held > 0) | (self.pending_buy > 0) | (self.pending_sell > 0)
        return [s for s, j in self.symbol_index.items() if busy[:, j].any()]

    def sellable(self, symbol: str, amount_step: float, min_cost: float) -> np.ndarray:
        """Per user: holds at least one amount step of `symbol` worth the market's minimum order at
        its last known close (unpriced: assumed sellable, as it cannot be shown to be dust)."""
        j = self.symbol_index[symbol]
        position, price = self.position[:, j], self.price[j]
        enough = position >= amount_step * (1 - 1e-9)
        return enough & (position * price >= min_cost) if np.isfinite(price) else enough

    def in_doubt(self, symbol: str) -> np.ndarray:
        """Per user: an order on `symbol` is in doubt."""
        j = self.symbol_index[symbol]
        return (self.pending_buy[:, j] > 0) | (self.pending_sell[:, j] > 0)

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    # ---- prices and money ------------------------------------------------------------------------

    def mark(self, closes: Mapping[str, float]) -> None:
        """Remember each symbol's newest close; NaN or missing keeps the last known one."""
        for symbol, close in closes.items():
            j = self.symbol_index.get(symbol)
            if j is not None and np.isfinite(close) and close > 0:
                self.price[j] = close

    def equity(self, prices: np.ndarray | None = None) -> np.ndarray:
        """Quote cash plus positions at `prices` (default: the last known closes). NaN for a user whose
        balances were not read yet or who holds a symbol never priced: unknown, not zero."""
        prices = self.price if prices is None else prices
        value = np.where(self.position != 0, self.position * prices, 0.0)
        return self.cash + value.sum(axis=1) if self.symbols else self.cash.copy()

    def free_cash(self, prices: np.ndarray | None = None) -> np.ndarray:
        """Cash not committed to buys in doubt (valued at `prices`, default the last known closes; an
        unpriced one at none)."""
        prices = self.price if prices is None else prices
        committed = np.where(self.pending_buy > 0, self.pending_buy * prices, 0.0)
        return self.cash - np.nan_to_num(committed).sum(axis=1) if self.symbols else self.cash.copy()

    def set_held(self, user_id: str, held: Mapping[str, float]) -> None:
        """The journal's net position per symbol of one user (a user new to this process): columns are
        added for symbols it holds that are not traded any more."""
        new = [s for s, amount in held.items() if amount > 0 and s not in self.symbol_index]
        if new:
            self.set_symbols([*self.symbols, *new])
        i = self.user_index[user_id]
        self.held[i] = [float(held.get(symbol, 0.0)) for symbol in self.symbols]
        self._cap(i)

    def set_balances(self, user_id: str, balances: Mapping[str, float]) -> None:
        """The exchange's totals for one user: quote cash, and each column's base currency as the cap
        of the position (assets of symbols not traded are ignored)."""
        i = self.user_index[user_id]
        self.exchange_totals[i] = {asset: float(amount) for asset, amount in balances.items()}
        self.cash[i] = float(balances.get(self.quote, 0.0))
        for symbol, j in self.symbol_index.items():
            self.balance[i, j] = float(balances.get(symbol.split("/")[0], 0.0))
        self._cap(i)

    def set_transfers(self, user_id: str, net: float) -> None:
        """The user's net transfers as of the balances last set (set together with them)."""
        self.transfers[self.user_index[user_id]] = net

    def coin_effects(self, user_id: str, balances: Mapping[str, float]) -> tuple[dict[str, float],
                                                                                dict[str, float]]:
        """What setting `balances` would change of the user's counted position per coin (min(held,
        balance) after less before; coins whose balance was never read: none), and each coin's last
        known close: what a coin transfer is valued by (`transfers.values_of`)."""
        i = self.user_index[user_id]
        change: dict[str, float] = {}
        prices: dict[str, float] = {}
        for symbol, j in self.symbol_index.items():
            coin = symbol.split("/")[0]
            before = self.balance[i, j]
            if np.isfinite(before):
                held = max(self.held[i, j], 0.0)
                after = float(balances.get(coin, 0.0))
                change[coin] = float(min(held, max(after, 0.0)) - min(held, max(before, 0.0)))
            if np.isfinite(self.price[j]):
                prices[coin] = float(self.price[j])
        return change, prices

    def set_pending(self, orders: Sequence[Order]) -> None:
        """The orders in doubt now (every user's): what is still to fill of each, by side."""
        self.pending_buy[:] = 0.0
        self.pending_sell[:] = 0.0
        for order in orders:
            i, j = self.user_index.get(order.user_id), self.symbol_index.get(order.symbol)
            if i is None or j is None:
                continue
            left = max(order.amount - order.filled, 0.0)
            target = self.pending_buy if order.side is Side.BUY else self.pending_sell
            target[i, j] += left

    def apply_fill(self, fill: Fill) -> None:
        """A fill the runtime saw for the first time: both the journal's side and the exchange's move."""
        i, j = self.user_index.get(fill.user_id), self._column(fill.symbol)
        if i is None:
            return
        base = _base_change(fill)
        self.held[i, j] += base
        if np.isfinite(self.balance[i, j]):
            self.balance[i, j] += base
        if fill.fee_currency == self.quote:
            self.cash[i] -= fill.fee
        self.cash[i] -= (1.0 if fill.side is Side.BUY else -1.0) * fill.amount * fill.price
        self._cap(i)

    def record_fills(self, fills: Iterable[Fill]) -> None:
        """Fills reconciliation found that the exchange's balances already include: only the
        journal's side moves."""
        touched = set()
        for fill in fills:
            i, j = self.user_index.get(fill.user_id), self._column(fill.symbol)
            if i is not None:
                self.held[i, j] += _base_change(fill)
                touched.add(i)
        for i in touched:
            self._cap(i)

    def _column(self, symbol: str) -> int:
        """`symbol`'s column, added if a fill arrives on a symbol not held or traded here (a lost fill
        reconciliation found): what it bought must stay priced and sellable."""
        if symbol not in self.symbol_index:
            self.set_symbols([*self.symbols, symbol])
        return self.symbol_index[symbol]

    def _cap(self, i: int) -> None:
        """Row i's positions: the journal's, never more than the exchange holds, never below zero."""
        self.position[i] = np.clip(np.fmin(self.held[i], self.balance[i]), 0.0, None)
        unread = np.isnan(self.balance[i])  # balances not read yet: nothing is sellable
        self.position[i][unread] = 0.0


def _base_change(fill: Fill) -> float:
    """What a fill adds to the base currency: bought (or minus sold), less a fee paid in the base."""
    base = fill.symbol.split("/")[0]
    change = fill.amount if fill.side is Side.BUY else -fill.amount
    return change - (fill.fee if fill.fee_currency == base else 0.0)
