"""From one bar's signals to every user's order intents, vectorised over users.

Per symbol the book holds (the bundle's, plus any a user still holds): users holding it exit when its
target is 0, when their kill switch is on (every symbol, signal or not, on every bar until flat: a
failed or rejected sell is sent again on the next bar), or when the symbol left the bundle (intent
"drop": the pipeline no longer vouches for its strategy, so the position is sold on the first bar after
the reload, valued and sized at its last known close). Users not holding it enter on the bar its target
turns 1, unless a risk block or the user's pause (`user_control`) stops new entries; a user who asked
to stop is flattened like a killed one (intent "stop") and enters nothing. Entry size:
`xray_core.risk.sizing.entry_notional` with the user's profile sizing for the symbol from the bundle
(else the user's own), capped by the room left under the user's max position and by free cash, rounded
down to the market's amount step; an order under the market's minimum cost is not sent. Orders in doubt
count: a buy not yet settled as held (no second entry, less room) and as spent cash, a sell not yet
settled as sold. Cash is committed symbol by symbol so simultaneous entries never spend the same money
twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from xray_core.risk.limits.book import NOT_BLOCKED
from xray_core.risk.sizing import entry_notional
from xray_core.trading.orders import Lineage, OrderIntent, Side
from xray_runtime.artefacts import Promoted, SymbolPlan
from xray_runtime.book import Book
from xray_runtime.signals import Signal

DROPPED = "drop"  # the intent (and lineage strategy) of selling a symbol the bundle no longer has


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
           block: np.ndarray, killed: np.ndarray, bar_ms: int | None = None,
           paused: np.ndarray | None = None, flatten: np.ndarray | None = None) -> Decisions:
    """Every user's intents for this bar. `killed`: users whose kill switch is on (fired now or before:
    they are flattened on every call until flat). `bar_ms`: the bar being decided, for exits on a symbol
    without a signal this bar (default: the newest signal's bar). `paused`: users who asked for no new
    entries; `flatten`: users who asked to stop (sold until flat, no entries) — `user_control.masks`."""
    decisions = Decisions()
    prices = book.price.copy()  # the last known closes, this bar's where a signal has one
    for symbol, latest in signals.items():
        j = book.symbol_index.get(symbol)
        if j is not None and math.isfinite(latest.close) and latest.close > 0:
            prices[j] = latest.close
    equity = book.equity(prices)
    free = book.free_cash(prices)
    users = book.active
    no_entry = np.zeros(len(users), dtype=bool) if paused is None else paused
    stopping = np.zeros(len(users), dtype=bool) if flatten is None else flatten
    if bar_ms is None:
        bar_ms = max((s.bar_ms for s in signals.values()), default=None)
    for symbol, j in book.symbol_index.items():
        rule, price = rules.get(symbol), float(prices[j])
        if rule is None or not (math.isfinite(price) and price > 0):
            continue  # no market rules or never priced: nothing can be sized or checked
        signal, plan = signals.get(symbol), promoted.plans.get(symbol)
        holding = (book.position[:, j] + book.pending_buy[:, j]) * price >= rule.min_cost
        leaving = plan is None or (signal is not None and signal.target == 0)
        exits = users & holding & (killed | stopping | leaving)
        bar = signal.bar_ms if signal is not None else bar_ms
        for i in np.flatnonzero(exits).tolist() if bar is not None else ():
            amount = _round_down(book.position[i, j] - book.pending_sell[i, j], rule.amount_step)
            if amount > 0 and bar is not None:  # bar: always set here (see the loop), narrowed for mypy
                intent = ("kill" if killed[i] else "stop" if stopping[i]
                          else "exit" if plan is not None else DROPPED)
                decisions.add(i, OrderIntent(book.user_ids[i], symbol, Side.SELL, amount, bar, intent,
                                             _lineage(promoted, plan, signal, symbol, bar)))
        if signal is None or plan is None or not signal.entry:
            continue
        enters = users & ~holding & (block == NOT_BLOCKED) & ~killed & ~no_entry & ~stopping
        if not enters.any():
            continue
        share, leverage, margin, max_position = _sizing(book, promoted, symbol)
        # Room left under the max position: what is held and what is in doubt count against it.
        exposure = (book.position[:, j] + book.pending_buy[:, j]) * price
        room = np.maximum(max_position - exposure, 0.0)
        notional = entry_notional(equity, free, share, leverage, margin, room, spot=True)
        amounts = np.floor(notional / price / rule.amount_step) * rule.amount_step
        big_enough = amounts * price >= rule.min_cost
        decisions.skipped_small += int((enters & ~big_enough).sum())
        for i in np.flatnonzero(enters & big_enough).tolist():
            decisions.add(i, _intent(book, i, signal, Side.BUY, float(amounts[i]), "enter"))
            free[i] -= amounts[i] * price
    return decisions


def _lineage(promoted: Promoted, plan: SymbolPlan | None, signal: Signal | None, symbol: str,
             bar_ms: int) -> Lineage:
    """What an exit was decided from: the signal's lineage, else the plan's (a killed user's symbol
    without a signal this bar), else the bundle that dropped the symbol."""
    if signal is not None:
        return signal.lineage
    return Lineage(bundle_version=promoted.version, strategy=plan.strategy.name if plan else DROPPED,
                   params=plan.params_json if plan else "{}", model_version=None,
                   data_version=f"{plan.data_version if plan else symbol}@{bar_ms}")


def _sizing(book: Book, promoted: Promoted, symbol: str) -> tuple[np.ndarray, ...]:
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
