"""From one bar's signals to every user's order intents, vectorised over users.

Per symbol: users holding it exit when its target is 0 (or when their kill switch fired); users not
holding it enter on the bar its target turns 1, unless a risk block stops new entries. Entry size:
`xray_core.risk.sizing.entry_notional` with the user's profile sizing for the symbol from the bundle
(else the user's own), capped by the user's max position and free cash, rounded down to the market's
amount step; an order under the market's minimum cost is not sent. Cash is committed symbol by symbol
so simultaneous entries never spend the same money twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from xray_core.risk.limits.book import NOT_BLOCKED
from xray_core.risk.sizing import entry_notional
from xray_core.trading.orders import OrderIntent, Side
from xray_runtime.artefacts import Promoted
from xray_runtime.book import Book
from xray_runtime.signals import Signal


@dataclass(frozen=True)
class MarketRules:
    amount_step: float
    min_cost: float


@dataclass
class Decisions:
    intents: dict[int, list[OrderIntent]] = field(default_factory=dict)  # user index -> intents
    skipped_small: int = 0  # entries under the exchange's minimum order

    def add(self, i: int, intent: OrderIntent) -> None:
        self.intents.setdefault(i, []).append(intent)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.intents.values())


def decide(book: Book, signals: dict[str, Signal], promoted: Promoted, rules: dict[str, MarketRules],
           block: np.ndarray, killed: np.ndarray) -> Decisions:
    decisions = Decisions()
    prices = np.array([signals[s].close if s in signals else np.nan for s in book.symbols])
    equity = book.equity(prices)
    free = book.cash.copy()
    users = book.active
    for symbol, signal in signals.items():
        j = book.symbol_index.get(symbol)
        rule = rules.get(symbol)
        if j is None or rule is None:
            continue
        holding = book.position[:, j] * signal.close >= rule.min_cost
        exits = users & holding & ((signal.target == 0) | killed)
        for i in np.flatnonzero(exits).tolist():
            amount = _round_down(book.position[i, j], rule.amount_step)
            if amount > 0:
                intent = "kill" if killed[i] else "exit"
                decisions.add(i, _intent(book, i, signal, Side.SELL, amount, intent))
        if not signal.entry:
            continue
        enters = users & ~holding & (block == NOT_BLOCKED) & ~killed
        if not enters.any():
            continue
        notional = entry_notional(equity, free, *_sizing(book, promoted, symbol), spot=True)
        amounts = np.floor(notional / signal.close / rule.amount_step) * rule.amount_step
        big_enough = amounts * signal.close >= rule.min_cost
        decisions.skipped_small += int((enters & ~big_enough).sum())
        for i in np.flatnonzero(enters & big_enough).tolist():
            decisions.add(i, _intent(book, i, signal, Side.BUY, float(amounts[i]), "enter"))
            free[i] -= amounts[i] * signal.close
    return decisions


def _sizing(
    book: Book, promoted: Promoted, symbol: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(trade_percentage, leverage, margin_multiplier, max_position_usd) per user for `symbol`."""
    # The pipeline's adaptive sizing of the user's profile, never bolder than what the user allowed.
    rows = [promoted.sizing(name, symbol) or {} for name in book.profile_names]
    idx = book.profile_idx

    def per_profile(key: str, missing: float) -> np.ndarray:
        return np.array([row.get(key, missing) for row in rows], dtype=np.float64)[idx]

    return (
        np.minimum(book.column("trade_percentage"), per_profile("trade_percentage", math.inf)),
        np.minimum(book.column("leverage"), per_profile("leverage", math.inf)),
        np.maximum(book.column("margin_multiplier"), per_profile("margin_multiplier", -math.inf)),
        book.column("max_position_usd"),
    )


def _intent(book: Book, i: int, signal: Signal, side: Side, amount: float, intent: str) -> OrderIntent:
    return OrderIntent(book.user_ids[i], signal.symbol, side, amount, signal.bar_ms, intent, signal.lineage)


def _round_down(amount: float, step: float) -> float:
    steps = math.floor(amount / step + 1e-9)
    return round(steps * step, 12)
