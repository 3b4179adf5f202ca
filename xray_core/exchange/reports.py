"""What a venue says about an order, a trade, a balance or a market, as typed frozen values: the
shapes the runtime's order path reads, whichever adapter produced them (`ccxt_parse` for ccxt).

Numbers are floats, deliberately: ccxt hands numbers over as floats already (its `safe_number`), and
everything they flow into (`Order.filled`, `Fill.amount`, the journal's columns, the book) is float
and compares amounts with a tolerance. A Decimal here would promise an exactness nothing downstream
keeps. The parser checks every number finite and amounts, prices and fees non-negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from xray_core.trading.orders import Fill, OrderStatus, Side


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One order as the venue reports it (an acknowledgement, a query, a listing or a cancel)."""

    exchange_order_id: str | None  # None only in an acknowledgement that carried none
    client_order_id: str | None  # None when the venue does not say (an order placed without one)
    symbol: str
    side: Side | None
    status: OrderStatus  # SUBMITTED when the venue gave no state (MEXC's answer to a new order)
    amount: float | None
    filled: float  # 0.0 when the venue did not say
    average: float | None  # average fill price, when something filled
    timestamp_ms: int | None


@dataclass(frozen=True, slots=True)
class FillReport:
    """One trade (execution) of the account; `trade_id` is unique per venue."""

    trade_id: str
    exchange_order_id: str | None
    client_order_id: str | None  # when the venue lists it with the trade
    symbol: str
    side: Side
    amount: float
    price: float
    fee: float
    fee_currency: str  # "" when the venue charged none or did not say
    timestamp_ms: int

    def to_fill(self, user_id: str, client_order_id: str | None = None) -> Fill:
        """The journal's `Fill`: the client order id from the caller (who knows the order), else the
        one the venue listed, else ""."""
        return Fill(
            trade_id=self.trade_id, client_order_id=client_order_id or self.client_order_id or "",
            user_id=user_id, symbol=self.symbol, side=self.side, amount=self.amount, price=self.price,
            fee=self.fee, fee_currency=self.fee_currency, timestamp_ms=self.timestamp_ms,
        )


@dataclass(frozen=True, slots=True)
class BalanceReport:
    """The account's holdings per currency: `free` to trade, `used` in open orders, `total` both."""

    free: Mapping[str, float]
    used: Mapping[str, float]
    total: Mapping[str, float]

    def total_of(self, asset: str) -> float:
        return self.total.get(asset, 0.0)


@dataclass(frozen=True, slots=True)
class MarketReport:
    """One listing's trading rules."""

    symbol: str  # unified, e.g. BTC/USDT
    base: str
    quote: str
    active: bool | None  # None: the venue does not say
    amount_step: float | None  # smallest increment of an order's amount, None when not fixed
    min_amount: float | None
    min_cost: float | None  # smallest order value in the quote currency
    taker_fee: float | None = None  # fee share of a taking (market) order, when the venue states it
