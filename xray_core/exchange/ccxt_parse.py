"""ccxt's unified dicts into typed reports: the one place that reads ccxt's order, trade, balance
and market structures. Each parser checks what it reads and raises `MalformedReportError` naming the
venue, the request, the field and the value (never a KeyError or a float() ValueError).

Fields ccxt leaves None because the venue did not send them are read as the report defines: an
order without status is SUBMITTED (we keep asking), without `filled` has filled nothing; a balance
amount of None is 0.0 (nothing held that the venue reports).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import ccxt

from xray_core.exchange.protocol import MalformedReportError
from xray_core.exchange.reports import BalanceReport, FillReport, MarketReport, OrderReport
from xray_core.trading.orders import Side, status_from_ccxt


class _Reader:
    """Checked reads of one ccxt dict; every problem names `context` (venue, request, what)."""

    def __init__(self, raw: object, context: str) -> None:
        if not isinstance(raw, Mapping):
            raise MalformedReportError(f"{context}: expected a mapping, got {_shown(raw)}")
        self.raw: Mapping[str, Any] = raw
        self.context = context

    def fail(self, problem: str) -> MalformedReportError:
        return MalformedReportError(f"{self.context}: {problem}")

    def number(self, key: str, *, required: bool = False) -> float | None:
        value = self.raw.get(key)
        if value is None:
            if required:
                raise self.fail(f"'{key}' is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(f"'{key}' is {_shown(value)}, not a number")
        try:
            number = float(value)
        except ValueError:
            raise self.fail(f"'{key}' is {_shown(value)}, not a number") from None
        if not math.isfinite(number) or number < 0:
            raise self.fail(f"'{key}' is {_shown(value)}, not a finite non-negative number")
        return number

    def required_number(self, key: str) -> float:
        number = self.number(key, required=True)
        assert number is not None
        return number

    def timestamp(self, key: str, *, required: bool = False) -> int | None:
        number = self.number(key, required=required)
        if number is None:
            return None
        if number != int(number):
            raise self.fail(f"'{key}' is {_shown(self.raw.get(key))}, not a whole number of ms")
        return int(number)

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string (ccxt ids may come as ints: read as their digits); "" reads as absent."""
        value = self.raw.get(key)
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int)):
            raise self.fail(f"'{key}' is {_shown(value)}, not text")
        text = str(value) if value is not None else ""
        if not text and required:
            raise self.fail(f"'{key}' is missing")
        return text or None

    def side(self, *, required: bool) -> Side | None:
        value = self.raw.get("side")
        if value is None and not required:
            return None
        if not isinstance(value, str) or value.lower() not in {side.value for side in Side}:
            raise self.fail(f"'side' is {_shown(value)}, not buy or sell")
        return Side(value.lower())

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self.raw.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(f"'{key}' is {_shown(value)}, not a mapping")
        return value


def parse_order(raw: object, context: str, *, symbol: str | None = None,
                client_order_id: str | None = None) -> OrderReport:
    """A ccxt unified order. `symbol` and `client_order_id` fill in what an acknowledgement may
    leave out (MEXC's answer to a new order names neither the client id nor a state)."""
    read = _Reader(raw, context)
    status = read.raw.get("status")
    if status is not None and not isinstance(status, str):
        raise read.fail(f"'status' is {_shown(status)}, not text")
    filled = read.number("filled") or 0.0
    return OrderReport(
        exchange_order_id=read.text("id"),
        client_order_id=read.text("clientOrderId") or client_order_id,
        symbol=read.text("symbol") or _required(read, symbol, "symbol"),
        side=read.side(required=False),
        status=status_from_ccxt({"status": status, "filled": filled}),
        amount=read.number("amount"),
        filled=filled,
        average=read.number("average"),
        timestamp_ms=read.timestamp("timestamp"),
    )


def parse_trade(raw: object, context: str, *, symbol: str | None = None) -> FillReport:
    """A ccxt unified trade (one of `fetch_my_trades`)."""
    read = _Reader(raw, context)
    fee = _Reader(read.mapping("fee"), f"{context}, its fee")
    info = _Reader(read.mapping("info"), f"{context}, its info")
    trade_id = read.text("id", required=True)
    assert trade_id is not None
    side = read.side(required=True)
    assert side is not None
    return FillReport(
        trade_id=trade_id,
        exchange_order_id=read.text("order"),
        # ccxt's unified trade has no client order id; venues that list it put it in the raw info.
        client_order_id=read.text("clientOrderId") or info.text("clientOrderId"),
        symbol=read.text("symbol") or _required(read, symbol, "symbol"),
        side=side,
        amount=read.required_number("amount"),
        price=read.required_number("price"),
        fee=fee.number("cost") or 0.0,
        fee_currency=fee.text("currency") or "",
        timestamp_ms=int(read.timestamp("timestamp", required=True) or 0),
    )


def parse_balance(raw: object, context: str) -> BalanceReport:
    """A ccxt balance: its `free`, `used` and `total` tables by currency."""
    read = _Reader(raw, context)
    if not isinstance(read.raw.get("total"), Mapping):
        raise read.fail(f"'total' is {_shown(read.raw.get('total'))}, not a table of currencies")

    def table(key: str) -> Mapping[str, float]:
        amounts = _Reader(read.mapping(key), f"{context}, its {key!r} table")
        return MappingProxyType({str(asset): amounts.number(str(asset)) or 0.0 for asset in amounts.raw})

    return BalanceReport(free=table("free"), used=table("used"), total=table("total"))


def parse_market(raw: object, context: str, precision_mode: int) -> MarketReport:
    """One ccxt market. ccxt states `precision.amount` as a step (TICK_SIZE mode, MEXC) or as a
    number of decimals (DECIMAL_PLACES); significant digits fix no step."""
    read = _Reader(raw, context)
    precision = _Reader(read.mapping("precision"), f"{context}, its precision")
    limits = _Reader(read.mapping("limits"), f"{context}, its limits")
    amount_limits = _Reader(limits.mapping("amount"), f"{context}, its amount limits")
    cost_limits = _Reader(limits.mapping("cost"), f"{context}, its cost limits")
    active = read.raw.get("active")
    if active is not None and not isinstance(active, bool):
        raise read.fail(f"'active' is {_shown(active)}, not true or false")
    symbol, base, quote = (read.text(key, required=True) for key in ("symbol", "base", "quote"))
    assert symbol is not None and base is not None and quote is not None
    return MarketReport(symbol=symbol, base=base, quote=quote, active=active,
                        amount_step=_step(precision.number("amount"), precision_mode),
                        min_amount=amount_limits.number("min"), min_cost=cost_limits.number("min"),
                        taker_fee=read.number("taker"))


def _step(precision: float | None, mode: int) -> float | None:
    if precision is None or precision == 0:
        return None
    if mode == ccxt.DECIMAL_PLACES:
        return 10.0 ** -precision
    if mode == ccxt.TICK_SIZE:
        return precision
    return None  # SIGNIFICANT_DIGITS: the step depends on the amount


def _required(read: _Reader, fallback: str | None, key: str) -> str:
    if fallback is None:
        raise read.fail(f"'{key}' is missing")
    return fallback


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_markets(raw: object, context: str,
                  precision_mode: int) -> tuple[dict[str, MarketReport], list[str]]:
    """Every parseable market of ccxt's `markets` table, and one line per market left out: one odd
    listing must not take the others with it."""
    table = _Reader(raw, context)
    markets: dict[str, MarketReport] = {}
    problems: list[str] = []
    for symbol, market in table.raw.items():
        try:
            markets[str(symbol)] = parse_market(market, f"{context}, market {symbol}", precision_mode)
        except MalformedReportError as error:
            problems.append(error.reason)
    return markets, problems
