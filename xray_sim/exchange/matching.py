"""The matching engine: orders against the market's price path, fills, fees and balances.

Pure exchange logic (no HTTP). Rules, as on MEXC spot:

* Market orders (and limit orders that cross the spread on arrival) trade at once at the touch:
  buys at the ask, sells at the bid (`book.top_of_book`: traded price plus/minus the half spread),
  and pay the taker fee. LIMIT orders that do not cross rest with their funds locked; IOC and FOK
  orders that do not cross are cancelled; LIMIT_MAKER orders that would cross are rejected.
* A resting limit order fills at its own price, as maker, once a complete bar of the market's finest
  timeframe trades through it (buy: low < price, sell: high > price); the fill time is that bar's
  open time. Only bars that open after the order arrived count, so nothing is filled on prices the
  order could not have seen. Evaluation is lazy: the server runs `evaluate` for the caller's orders
  on each private request and for everyone from a background task.
* Commission is charged in the asset received (base on buys, quote on sells), as MEXC does, rounded
  half-up to the commission precision (`order_rules.COMMISSION_EXTRA_DECIMALS` beyond the asset's
  trading precision). Locks cover exactly what an order may spend.
* A partial-fill fault (`partial_ratio`) makes the first fill of an order take only that share; the
  rest trades on a later bar (market orders: at the touch when the next bar opens; limit orders: at
  the next bar that trades through). FILL_OR_KILL never fills partially; IOC cancels the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from xray_core.timeframes import TIMEFRAME_MS
from xray_sim.exchange import apierror
from xray_sim.exchange.accounts import Account, AccountBook, InsufficientBalanceError
from xray_sim.exchange.book import Quote, top_of_book
from xray_sim.exchange.decimals import ZERO, floor_to, from_float, quantum
from xray_sim.exchange.order_rules import (
    OrderRequest,
    base_commission_decimals,
    plan_order,
    quote_commission_decimals,
)
from xray_sim.exchange.orders import Fill, IdGenerator, Order, OrderStatus, OrderType, Side
from xray_sim.exchange.protocol import MarketSource
from xray_sim.exchange.universe import MarketSpec

MAX_OPEN_ORDERS = 500  # per API key and symbol


@dataclass
class EngineStats:
    orders: int = 0
    fills: int = 0
    rejected: int = 0


class MatchingEngine:
    def __init__(self, market: MarketSource, accounts: AccountBook, ids: IdGenerator | None = None,
                 duplicate_ids: str = "dedupe") -> None:
        self.market = market
        self.accounts = accounts
        self.duplicate_ids = duplicate_ids  # see config.DuplicateIds
        self.ids = ids or IdGenerator()
        self.stats = EngineStats()
        self._orders: dict[str, dict[str, Order]] = {}  # key -> order id -> order, in creation order
        self._client_ids: dict[tuple[str, str], Order] = {}  # (key, clientOrderId) -> order
        self._open: dict[str, Order] = {}  # order id -> every open order of every key
        self._open_by_key: dict[str, dict[str, Order]] = {}  # key -> its open orders, by id
        self._fills: dict[str, list[Fill]] = {}  # key -> fills, oldest first
        self._timeframes: dict[str, str] = {}  # market id -> finest timeframe

    # ---- placing -------------------------------------------------------------------------------
    def place(self, key: str, request: OrderRequest, now_ms: int, partial_ratio: Decimal | None = None,
              test: bool = False) -> Order | None:
        """Accept (and maybe fill) a new order, or raise the ApiError MEXC would answer.

        A repeated clientOrderId, per `duplicate_ids`: returns the order it already created (dedupe;
        dedupe-open while that order is open), is refused (reject), or, once the first order closed,
        makes a second one (dedupe-open). With `test` only the checks run (POST /api/v3/order/test)
        and nothing is created."""
        if request.client_order_id is not None:
            existing = self._client_ids.get((key, request.client_order_id))
            if existing is not None and self.duplicate_ids == "reject":
                self.stats.rejected += 1
                raise apierror.duplicate_order()
            if existing is not None and (self.duplicate_ids == "dedupe" or existing.is_open):
                return existing
        try:
            spec = self._spec(request.market_id)
            mid, quote = self._prices(spec, now_ms)
            plan = plan_order(spec, request, quote)
            account = self._account(key)
            if account.free(plan.lock_asset) < plan.lock_amount:
                raise apierror.insufficient_position()
            resting = request.type.rests and not plan.marketable
            if resting and self._open_count(key, spec.market_id) >= MAX_OPEN_ORDERS:
                raise apierror.too_many_open_orders(MAX_OPEN_ORDERS)
        except apierror.ApiError:
            self.stats.rejected += 1
            raise
        if test:
            return None
        account.lock(plan.lock_asset, plan.lock_amount)
        order = Order(
            order_id=self.ids.order_id(now_ms), client_order_id=request.client_order_id, key=key,
            market_id=spec.market_id, side=request.side, type=request.type, orig_qty=plan.qty,
            price=request.price, orig_quote_qty=request.quote_qty, lock_asset=plan.lock_asset,
            locked=plan.lock_amount, time_ms=now_ms, checked_from_ms=self._next_bar(spec, now_ms),
            update_time_ms=now_ms, reference_price=mid,
            partial_ratio=None if request.type is OrderType.FILL_OR_KILL else partial_ratio,
        )
        self._register(order)
        self.stats.orders += 1
        if plan.marketable:
            self._take(spec, order, plan.fill_price, now_ms)
        elif not order.type.rests:
            self._close(order, now_ms)  # IOC / FOK that cannot trade now: cancelled, nothing filled
        return order

    def _take(self, spec: MarketSpec, order: Order, price: Decimal, now_ms: int) -> None:
        """Fill an order that crossed on arrival, at the touch, as taker."""
        qty = self._first_fill_qty(spec, order)
        self._fill(spec, order, qty, price, now_ms, is_maker=False)
        if not order.is_open:
            return
        # Only a partial-fill fault leaves an order open here. IOC cancels the rest; a market order
        # trades it when the next bar opens; a limit order rests until a bar trades through it.
        if order.type is OrderType.IMMEDIATE_OR_CANCEL:
            self._close(order, now_ms)
        elif order.type is OrderType.MARKET:
            order.deferred_from_ms = order.checked_from_ms

    def _first_fill_qty(self, spec: MarketSpec, order: Order) -> Decimal:
        """The whole remainder, or only the faulted share of it (at least a lot, never all)."""
        ratio, order.partial_ratio = order.partial_ratio, None
        if ratio is None:
            return order.remaining
        lot = quantum(spec.amount_decimals)
        part = max(lot, floor_to(order.remaining * ratio, spec.amount_decimals))
        return part if part < order.remaining else order.remaining

    # ---- lookups and cancels -------------------------------------------------------------------
    def find(self, key: str, market_id: str, order_id: str | None,
             client_order_id: str | None) -> Order | None:
        if order_id is not None:
            order = self._orders.get(key, {}).get(order_id)
        elif client_order_id is not None:
            order = self._client_ids.get((key, client_order_id))
        else:
            raise apierror.order_id_required()
        return order if order is not None and order.market_id == market_id else None

    def cancel(self, key: str, market_id: str, order_id: str | None, client_order_id: str | None,
               now_ms: int) -> Order:
        order = self.find(key, market_id, order_id, client_order_id)
        if order is None or not order.is_open:
            raise apierror.unknown_order()
        self._close(order, now_ms)
        return order

    def cancel_all(self, key: str, market_id: str, now_ms: int) -> list[Order]:
        orders = self.open_orders(key, market_id)
        for order in orders:
            self._close(order, now_ms)
        return orders

    def open_orders(self, key: str, market_id: str | None = None) -> list[Order]:
        open_orders = self._open_by_key.get(key, {}).values()
        return [o for o in open_orders if market_id is None or o.market_id == market_id]

    def orders(self, key: str, market_id: str | None = None, start_ms: int | None = None,
               end_ms: int | None = None, limit: int | None = None) -> list[Order]:
        """The key's orders (oldest first) created in [start_ms, end_ms], the latest `limit` of them."""
        chosen = [o for o in self._orders.get(key, {}).values()
                  if (market_id is None or o.market_id == market_id) and _within(o.time_ms, start_ms, end_ms)]
        return chosen[-limit:] if limit else chosen

    def fills(self, key: str, market_id: str | None = None, start_ms: int | None = None,
              end_ms: int | None = None, limit: int | None = None) -> list[Fill]:
        """The key's trades (oldest first) in [start_ms, end_ms]: the first `limit` from start_ms when
        it is given (so a client can page forward), otherwise the latest `limit`."""
        chosen = [f for f in self._fills.get(key, ())
                  if (market_id is None or f.market_id == market_id) and _within(f.time_ms, start_ms, end_ms)]
        if not limit:
            return chosen
        return chosen[:limit] if start_ms is not None else chosen[-limit:]

    @property
    def open_count(self) -> int:
        return len(self._open)

    # ---- matching resting and deferred orders --------------------------------------------------
    def evaluate(self, now_ms: int, key: str | None = None) -> int:
        """Match open orders (one key's, or everyone's) against the bars completed by `now_ms`.
        Returns the number of fills made."""
        before = self.stats.fills
        candidates: Iterable[Order] = self.open_orders(key) if key is not None else list(self._open.values())
        by_market: dict[str, list[Order]] = {}
        for order in candidates:
            spec = self._spec(order.market_id)
            if order.deferred_from_ms is not None:
                if now_ms >= order.deferred_from_ms:
                    self._fill_deferred(spec, order)
            elif self._bar_floor(spec, now_ms) > order.checked_from_ms:
                by_market.setdefault(spec.market_id, []).append(order)
        for market_id, orders in by_market.items():
            self._match_resting(self._spec(market_id), orders, now_ms)
        return self.stats.fills - before

    def _match_resting(self, spec: MarketSpec, orders: list[Order], now_ms: int) -> None:
        """Fill resting limit orders on the complete bars they have not yet been matched against."""
        timeframe = self._timeframe(spec)
        end = self._bar_floor(spec, now_ms)
        bars = self.market.bars(spec.symbol, timeframe, min(o.checked_from_ms for o in orders), end, now_ms)
        for order in orders:
            window = bars.between(order.checked_from_ms, end)
            assert order.price is not None  # only limit orders rest
            limit = float(order.price)
            crossed = window.low < limit if order.side is Side.BUY else window.high > limit
            for bar_ms in window.timestamp[crossed]:
                bar_ms = int(bar_ms)
                if bar_ms < order.checked_from_ms:
                    continue  # a duplicated bar (broken feeds repeat bars) or one already used
                qty = self._first_fill_qty(spec, order)
                self._fill(spec, order, qty, order.price, bar_ms, is_maker=True)
                order.checked_from_ms = bar_ms + TIMEFRAME_MS[timeframe]
                if not order.is_open:
                    break
            if order.is_open:
                order.checked_from_ms = max(order.checked_from_ms, end)

    def _fill_deferred(self, spec: MarketSpec, order: Order) -> None:
        """The postponed rest of a partially filled market order trades at the touch of its bar; a
        buy gets only as much as its reservation plus free funds can pay, the rest is cancelled."""
        at_ms = order.deferred_from_ms
        assert at_ms is not None
        order.deferred_from_ms = None
        _, quote = self._prices(spec, at_ms, halted_ok=True)
        qty = order.remaining
        if order.side is Side.BUY:
            price = quote.ask
            account = self._account(order.key)
            affordable = order.locked + account.free(spec.quote)
            if order.orig_quote_qty is not None:
                affordable = order.locked  # a cost-sized buy never spends more than it asked for
            qty = min(qty, floor_to(affordable / price, spec.amount_decimals))
            top_up = qty * price - order.locked
            if top_up > 0:
                account.lock(spec.quote, top_up)
                order.locked += top_up
        else:
            price = quote.bid
        if qty > 0:
            self._fill(spec, order, qty, price, at_ms, is_maker=False)
        if order.is_open:
            self._close(order, at_ms)

    # ---- bookkeeping ---------------------------------------------------------------------------
    def _fill(self, spec: MarketSpec, order: Order, qty: Decimal, price: Decimal, at_ms: int,
              is_maker: bool) -> None:
        account = self._account(order.key)
        quote_qty = qty * price
        rate = Decimal(spec.maker_fee if is_maker else spec.taker_fee)
        if order.side is Side.BUY:
            commission = _round_half_up(qty * rate, base_commission_decimals(spec))
            commission_asset, paid, received = spec.base, quote_qty, qty - commission
            account.spend_locked(spec.quote, paid)
            account.credit(spec.base, received)
        else:
            commission = _round_half_up(quote_qty * rate, quote_commission_decimals(spec))
            commission_asset, paid, received = spec.quote, qty, quote_qty - commission
            account.spend_locked(spec.base, paid)
            account.credit(spec.quote, received)
        order.locked -= paid
        order.executed_qty += qty
        order.cumulative_quote_qty += quote_qty
        order.update_time_ms = at_ms
        order.status = OrderStatus.FILLED if order.remaining == 0 else OrderStatus.PARTIALLY_FILLED
        self._fills.setdefault(order.key, []).append(Fill(
            trade_id=self.ids.trade_id(), order_id=order.order_id, client_order_id=order.client_order_id,
            key=order.key, market_id=order.market_id, side=order.side, price=price, qty=qty,
            quote_qty=quote_qty, commission=commission, commission_asset=commission_asset, time_ms=at_ms,
            is_maker=is_maker,
        ))
        self.stats.fills += 1
        if order.status is OrderStatus.FILLED:
            self._release(order)

    def _close(self, order: Order, now_ms: int) -> None:
        """Cancel what is left of an order and give back its reservation."""
        if order.status is not OrderStatus.FILLED:
            order.status = OrderStatus.PARTIALLY_CANCELED if order.executed_qty else OrderStatus.CANCELED
        order.deferred_from_ms = None
        order.update_time_ms = max(order.update_time_ms, now_ms)
        self._release(order)

    def _release(self, order: Order) -> None:
        if order.locked > 0:
            self._account(order.key).unlock(order.lock_asset, order.locked)
            order.locked = ZERO
        self._open.pop(order.order_id, None)
        self._open_by_key.get(order.key, {}).pop(order.order_id, None)

    def _register(self, order: Order) -> None:
        self._orders.setdefault(order.key, {})[order.order_id] = order
        self._open[order.order_id] = order
        self._open_by_key.setdefault(order.key, {})[order.order_id] = order
        if order.client_order_id is not None:
            self._client_ids[(order.key, order.client_order_id)] = order

    def _open_count(self, key: str, market_id: str) -> int:
        return sum(1 for o in self._open_by_key.get(key, {}).values() if o.market_id == market_id)

    def _account(self, key: str) -> Account:
        account = self.accounts.get(key)
        if account is None:
            raise InsufficientBalanceError(f"no account for {key}")
        return account

    def _spec(self, market_id: str) -> MarketSpec:
        spec = self.market.spec(market_id)
        if spec is None:
            raise apierror.invalid_symbol()
        return spec

    def _prices(self, spec: MarketSpec, now_ms: int, halted_ok: bool = False) -> tuple[Decimal, Quote]:
        """The traded price and the touch around it; a halted market refuses new orders."""
        if not halted_ok and not self.market.is_trading(spec.symbol, now_ms):
            raise apierror.symbol_halted()
        price = self.market.price_at(spec.symbol, now_ms)
        if price is None:
            raise apierror.symbol_halted()
        return from_float(price, spec.price_decimals), top_of_book(spec, price)

    def _timeframe(self, spec: MarketSpec) -> str:
        """The market's finest timeframe: the bars resting orders are matched on."""
        timeframe = self._timeframes.get(spec.market_id)
        if timeframe is None:
            timeframe = self._timeframes[spec.market_id] = self.market.timeframes(spec.symbol)[0]
        return timeframe

    def _bar_floor(self, spec: MarketSpec, t_ms: int) -> int:
        step = TIMEFRAME_MS[self._timeframe(spec)]
        return t_ms - t_ms % step

    def _next_bar(self, spec: MarketSpec, t_ms: int) -> int:
        return self._bar_floor(spec, t_ms) + TIMEFRAME_MS[self._timeframe(spec)]


def _within(t_ms: int, start_ms: int | None, end_ms: int | None) -> bool:
    return (start_ms is None or t_ms >= start_ms) and (end_ms is None or t_ms <= end_ms)


def _round_half_up(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(quantum(decimals), rounding=ROUND_HALF_UP)
