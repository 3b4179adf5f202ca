"""Orders and fills as pure values, and the one state machine every order follows.

An order starts as an *intent* the runtime decided on a closed bar. Its client order id is derived
from (user, symbol, bar, intent), so deciding again after a crash or a timeout yields the same id and
a venue that deduplicates client order ids (MEXC does; see `xray_core.exchange.venues`) returns the
order it already has instead of making a second one. States:

    PENDING ──► SUBMITTED ──► OPEN ──► PARTIALLY_FILLED ──► FILLED
       │            │           │              │
       └──► REJECTED└──► (any exchange state)  └──► CANCELED / EXPIRED

PENDING: recorded locally, not yet sent. SUBMITTED: sent, the answer not (yet) seen — after a timeout
or a dropped connection the order may or may not exist; only the exchange can say, and reconciliation
asks it by client order id. Terminal states never change; `filled` never decreases.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from xray_core.errors import XrayError


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED})
_EXCHANGE_STATES = frozenset(OrderStatus) - {OrderStatus.PENDING, OrderStatus.SUBMITTED}
ALLOWED: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.SUBMITTED, OrderStatus.REJECTED}),
    OrderStatus.SUBMITTED: _EXCHANGE_STATES,
    OrderStatus.OPEN: frozenset({OrderStatus.PARTIALLY_FILLED} | TERMINAL),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}),
    **{state: frozenset() for state in TERMINAL},
}


class IllegalTransitionError(XrayError):
    """An order was asked to move to a state its life cycle does not allow (a bug or corrupt state)."""


@functools.lru_cache(maxsize=1 << 16)  # asked several times per order on the hot path; a hash each time
def client_order_id(user_id: str, symbol: str, bar_ms: int, intent: str) -> str:
    """The deterministic client order id of `intent` for `user_id` on `symbol`'s bar `bar_ms`:
    "x" + 31 hex digits (32 characters: within every registered venue's
    `max_client_order_id_length`), the same every time it is derived."""
    digest = hashlib.sha256(f"{user_id}|{symbol}|{bar_ms}|{intent}".encode()).hexdigest()
    return "x" + digest[:31]


@dataclass(frozen=True, slots=True)
class Lineage:
    """What an order was decided from: the promoted bundle, the strategy's parameters, the model
    version (if a model decided) and the data version of the bar."""

    bundle_version: str
    strategy: str
    params: str  # canonical JSON of the parameter set
    model_version: str | None
    data_version: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        return cls(str(data["bundle_version"]), str(data["strategy"]), str(data["params"]),
                   data.get("model_version"), str(data["data_version"]))


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A decision to trade: market order of `amount` base units (buy or sell) on `symbol`."""

    user_id: str
    symbol: str
    side: Side
    amount: float
    bar_ms: int
    intent: str  # e.g. "enter", "exit": one order per intent per bar
    lineage: Lineage

    @property
    def client_order_id(self) -> str:
        return client_order_id(self.user_id, self.symbol, self.bar_ms, self.intent)


@dataclass(frozen=True, slots=True)
class Order:
    """One order's local state; `advance` returns the next state or raises IllegalTransitionError."""

    client_order_id: str
    user_id: str
    symbol: str
    side: Side
    amount: float
    bar_ms: int
    intent: str
    lineage: Lineage
    status: OrderStatus = OrderStatus.PENDING
    filled: float = 0.0
    average: float | None = None
    exchange_order_id: str | None = None
    reason: str = ""
    updated_ms: int = 0

    @classmethod
    def from_intent(cls, intent: OrderIntent, now_ms: int) -> Order:
        return cls(intent.client_order_id, intent.user_id, intent.symbol, intent.side, intent.amount,
                   intent.bar_ms, intent.intent, intent.lineage, updated_ms=now_ms)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (enums as their strings, lineage nested): how stores keep an order."""
        data = {name: getattr(self, name) for name in self.__slots__}
        data["side"], data["status"] = str(self.side), str(self.status)
        data["lineage"] = self.lineage.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Order:
        fields = dict(data)
        fields["side"], fields["status"] = Side(fields["side"]), OrderStatus(fields["status"])
        fields["lineage"] = Lineage.from_dict(fields["lineage"])
        return cls(**{name: fields[name] for name in cls.__slots__ if name in fields})

    def advance(self, status: OrderStatus, now_ms: int, *, filled: float | None = None,
                average: float | None = None, exchange_order_id: str | None = None,
                reason: str = "") -> Order:
        if status != self.status and status not in ALLOWED[self.status]:
            raise IllegalTransitionError(
                f"order {self.client_order_id}: {self.status} -> {status} is not allowed",
                "reconcile the user's orders against the exchange",
            )
        new_filled = self.filled if filled is None else filled
        if new_filled < self.filled - 1e-12:
            raise IllegalTransitionError(
                f"order {self.client_order_id}: filled would fall from {self.filled} to {new_filled}",
                "reconcile the user's orders against the exchange",
            )
        return replace(
            self, status=status, filled=new_filled, average=average if average is not None else self.average,
            exchange_order_id=exchange_order_id or self.exchange_order_id,
            reason=reason or self.reason, updated_ms=now_ms,
        )


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution as the exchange reports it (ccxt's trade); `trade_id` is unique per exchange."""

    trade_id: str
    client_order_id: str
    user_id: str
    symbol: str
    side: Side
    amount: float
    price: float
    fee: float
    fee_currency: str
    timestamp_ms: int
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def status_from_ccxt(order: dict[str, Any]) -> OrderStatus:
    """Map a ccxt unified order to our status (ccxt: open, closed, canceled, expired, rejected)."""
    status = order.get("status")
    filled = float(order.get("filled") or 0.0)
    if status == "closed":
        return OrderStatus.FILLED
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.OPEN
    if status in ("canceled", "cancelled"):
        return OrderStatus.CANCELED
    if status == "expired":
        return OrderStatus.EXPIRED
    if status == "rejected":
        return OrderStatus.REJECTED
    return OrderStatus.SUBMITTED  # unknown to ccxt: keep asking
