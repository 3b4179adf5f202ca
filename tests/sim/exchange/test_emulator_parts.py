"""The emulator's parts on their own: signatures, weight windows, balances and the matching rules."""

from __future__ import annotations

from decimal import Decimal

import ccxt
import pytest

from xray_sim.exchange import apierror
from xray_sim.exchange.accounts import AccountBook, InsufficientBalanceError
from xray_sim.exchange.auth import authenticate, sign, split_signature
from xray_sim.exchange.book import top_of_book
from xray_sim.exchange.decimals import fmt_decimal, fmt_float
from xray_sim.exchange.market import SyntheticMarket
from xray_sim.exchange.matching import MatchingEngine
from xray_sim.exchange.order_rules import OrderRequest
from xray_sim.exchange.orders import OrderStatus, OrderType, Side
from xray_sim.exchange.ratelimit import RateLimiter, Scope, request_weight

MINUTE = 60_000
NOW = 1_750_000_000_000


# ---- signatures ----------------------------------------------------------------------------------
def test_the_signature_is_ccxt_s_hmac_of_the_query_without_it():
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=5&timestamp=1701303487584&recvWindow=5000"
    expected = ccxt.Exchange.hmac(query.encode(), b"secret")
    assert sign("secret", query) == expected
    payload, signature = split_signature(f"{query}&signature={expected}")
    assert (payload, signature) == (query, expected)
    payload, signature = split_signature("symbol=X&signature=abc&startTime=1")  # anywhere in the query
    assert (payload, signature) == ("symbol=X&startTime=1", "abc")


def _signed(secret: str, timestamp: int, extra: str = "") -> tuple[str, dict[str, str]]:
    query = f"symbol=BTCUSDT&timestamp={timestamp}&recvWindow=5000{extra}"
    params = dict(part.split("=") for part in query.split("&"))
    return f"{query}&signature={sign(secret, query)}", params


def test_authentication_accepts_a_fresh_signed_request_and_refuses_the_rest():
    book = AccountBook({"USDT": "1"})
    book.register("key", "secret")
    raw, params = _signed("secret", NOW)
    assert authenticate(book, "key", raw, "", params, NOW + 100, 60_000).key == "key"
    cases = [
        ("key", _signed("wrong", NOW), NOW, 700002),
        ("nobody", _signed("secret", NOW), NOW, 700001),
        ("key", _signed("secret", NOW), NOW + 5001, 700003),  # older than recvWindow
        ("key", _signed("secret", NOW), NOW - 1000, 700003),  # a second or more in the future
        ("key", _signed("secret", NOW, "&recvWindow=90000"), NOW, 700005),
        (None, _signed("secret", NOW), NOW, 400),
    ]
    for key, (raw, params), wall, code in cases:
        with pytest.raises(apierror.ApiError) as refused:
            authenticate(book, key, raw, "", params, wall, 60_000)
        assert refused.value.code == code


# ---- weights -------------------------------------------------------------------------------------
def test_weights_follow_mexc_s_table():
    assert request_weight("GET", "/api/v3/exchangeInfo", has_symbol=False) == 10
    assert request_weight("GET", "/api/v3/ticker/24hr", has_symbol=True) == 1
    assert request_weight("GET", "/api/v3/ticker/24hr", has_symbol=False) == 40
    assert request_weight("POST", "/api/v3/order", has_symbol=True) == 1
    assert request_weight("GET", "/api/v3/myTrades", has_symbol=True) == 10


def test_the_window_slides_and_refused_requests_cost_nothing():
    now = [0.0]
    limiter = RateLimiter(limit=10, window_s=10, clock=lambda: now[0])
    assert limiter.admit(Scope.IP, "a", 6)
    now[0] = 5.0
    assert limiter.admit(Scope.IP, "a", 4)
    assert not limiter.admit(Scope.IP, "a", 1)
    assert limiter.admit(Scope.IP, "b", 10)  # another IP has its own pool
    assert limiter.admit(Scope.KEY, "a", 10)  # and a key is not an IP
    now[0] = 9.9
    assert not limiter.admit(Scope.IP, "a", 1) and limiter.used(Scope.IP, "a") == 10
    now[0] = 10.0  # the first 6 have slid out, the 4 have not
    assert limiter.admit(Scope.IP, "a", 6) and not limiter.admit(Scope.IP, "a", 1)
    assert limiter.violations == {Scope.IP: 3}
    now[0] = 100.0
    limiter.prune()
    assert limiter.used(Scope.IP, "a") == 0


# ---- balances ------------------------------------------------------------------------------------
def test_balances_move_between_free_and_locked_and_never_go_negative():
    book = AccountBook({"USDT": "100"})
    account = book.register("k", "s")
    account.lock("USDT", Decimal("60"))
    with pytest.raises(InsufficientBalanceError):
        account.lock("USDT", Decimal("40.01"))
    account.spend_locked("USDT", Decimal("50"))
    account.unlock("USDT", Decimal("10"))
    with pytest.raises(InsufficientBalanceError):
        account.spend_locked("USDT", Decimal("0.01"))
    assert (account.free("USDT"), account.balance("USDT").locked) == (Decimal("50"), Decimal("0"))
    with pytest.raises(ValueError, match="taken"):
        book.register_many([("new", "s", None), ("k", "s", None)])
    assert book.get("new") is None  # nothing was opened


def test_numbers_are_written_without_noise():
    assert fmt_float(0.1 + 0.2, 8) == "0.3" and fmt_float(73260.0, 2) == "73260"
    assert fmt_float(-0.0000001, 4) == "0" and fmt_float(8.5e-06, 10) == "0.0000085"
    assert fmt_decimal(Decimal("1.2300")) == "1.23" and fmt_decimal(Decimal("1E+3")) == "1000"


# ---- matching rules ------------------------------------------------------------------------------
@pytest.fixture
def engine() -> MatchingEngine:
    market = SyntheticMarket(seed=5, start_ms=NOW, history_days=3)
    book = AccountBook({"USDT": "10000", "ETH": "10"})
    book.register("k", "s")
    return MatchingEngine(market, book)


def test_the_touch_is_the_traded_price_plus_and_minus_the_half_spread(engine):
    spec = engine.market.spec("ETH/USDT")
    price = engine.market.price_at("ETH/USDT", NOW)
    quote = top_of_book(spec, price)
    assert quote.bid < Decimal(str(price)) < quote.ask
    spread = 2 * price * spec.half_spread_bps / 1e4
    assert spread <= float(quote.ask - quote.bid) <= spread + 0.02  # each side rounded outwards to a tick


def test_a_market_buy_by_cost_spends_at_most_the_cost_and_keeps_the_rest_free(engine):
    request = OrderRequest("ETHUSDT", Side.BUY, OrderType.MARKET, quote_qty=Decimal("1000"))
    order = engine.place("k", request, NOW)
    assert order is not None and order.status is OrderStatus.FILLED
    assert Decimal("999") < order.cumulative_quote_qty <= Decimal("1000")
    usdt = engine.accounts.get("k").balance("USDT")  # type: ignore[union-attr]
    assert usdt.locked == 0 and usdt.free == Decimal("10000") - order.cumulative_quote_qty


def test_a_resting_order_is_matched_only_on_bars_after_it_arrived_and_only_once(engine):
    minutes = engine.market.bars("ETH/USDT", "1m", NOW - 10 * MINUTE, NOW + 600 * MINUTE, NOW + 600 * MINUTE)
    later = minutes.between(NOW - NOW % MINUTE + MINUTE, NOW + 600 * MINUTE)
    limit = Decimal(str(round(float(later.low.min()) + 0.01, 2)))  # crossed at least once, later on
    request = OrderRequest("ETHUSDT", Side.BUY, OrderType.LIMIT, Decimal("1"), price=limit)
    order = engine.place("k", request, NOW)
    assert order is not None and order.status is OrderStatus.NEW
    assert engine.evaluate(NOW + 600 * MINUTE) == 1
    assert engine.evaluate(NOW + 600 * MINUTE) == 0
    fill_bar = int(later.timestamp[later.low < float(limit)][0])
    [fill] = engine.fills("k")
    assert (fill.time_ms, fill.price, fill.is_maker) == (fill_bar, limit, True)


def test_a_partial_fill_of_a_resting_order_leaves_the_rest_for_a_later_crossing(engine):
    spec = engine.market.spec("ETH/USDT")
    bid = top_of_book(spec, engine.market.price_at("ETH/USDT", NOW)).bid
    request = OrderRequest("ETHUSDT", Side.SELL, OrderType.LIMIT, Decimal("2"), price=bid - 200)  # crosses
    order = engine.place("k", request, NOW, partial_ratio=Decimal("0.25"))
    assert order is not None
    assert (order.status, order.executed_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal("0.5"))
    engine.evaluate(NOW + 5 * MINUTE)
    assert order.status is OrderStatus.FILLED
    first, second = engine.fills("k")
    assert (first.is_maker, second.is_maker) == (False, True) and second.time_ms > first.time_ms
