"""Orders and fills as MEXC spot v3 knows them (the data; `matching` holds the logic)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from xray_sim.exchange.decimals import ZERO


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    LIMIT_MAKER = "LIMIT_MAKER"
    IMMEDIATE_OR_CANCEL = "IMMEDIATE_OR_CANCEL"
    FILL_OR_KILL = "FILL_OR_KILL"

    @property
    def rests(self) -> bool:
        """Whether an order of this type may stay on the book."""
        return self in (OrderType.LIMIT, OrderType.LIMIT_MAKER)


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PARTIALLY_CANCELED = "PARTIALLY_CANCELED"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


@dataclass(slots=True)
class Order:
    """One order. Quantities are in the base asset, `price` is the limit (None for market orders).

    `locked` is what the order still holds reserved in `lock_asset`: quote for buys, base for sells.
    `deferred_from_ms` is set when a partial-fill fault postponed the remainder to a later bar;
    `checked_from_ms` is the open time of the first bar a resting order has not been matched against.
    """

    order_id: str
    client_order_id: str | None
    key: str
    market_id: str
    side: Side
    type: OrderType
    orig_qty: Decimal
    price: Decimal | None
    orig_quote_qty: Decimal | None
    lock_asset: str
    locked: Decimal
    time_ms: int
    checked_from_ms: int
    update_time_ms: int
    reference_price: Decimal  # the traded price when the order arrived (MEXC echoes it for market orders)
    status: OrderStatus = OrderStatus.NEW
    executed_qty: Decimal = ZERO
    cumulative_quote_qty: Decimal = ZERO
    deferred_from_ms: int | None = None
    partial_ratio: Decimal | None = None  # a pending partial-fill fault: fill only this share first

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def is_open(self) -> bool:
        return self.status.is_open


@dataclass(frozen=True, slots=True)
class Fill:
    """One of the account's trades (what /api/v3/myTrades lists)."""

    trade_id: str
    order_id: str
    client_order_id: str | None
    key: str
    market_id: str
    side: Side
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool


@dataclass
class IdGenerator:
    """Order ids shaped like MEXC's ("C02__" + 18 digits of time and sequence + a 3-digit shard)
    and 32-hex trade ids. Ids only ever grow, so they sort like creation order."""

    shard: int = 43
    _sequence: itertools.count[int] = field(default_factory=itertools.count)

    def order_id(self, time_ms: int) -> str:
        number = time_ms * 100_000 + next(self._sequence) % 100_000
        return f"C02__{number:018d}{self.shard:03d}"

    @staticmethod
    def trade_id() -> str:
        return uuid.uuid4().hex
