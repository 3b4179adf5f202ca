"""Stock ccxt.mexc against the emulator, method by method, the way a trading runtime uses it."""

from __future__ import annotations

import pytest

MINUTE = 60_000
HOUR = 60 * MINUTE


def test_load_markets_lists_the_universe_as_mexc_describes_it(mexc):
    assert len(mexc.markets) == 25
    assert all(m["spot"] and not m["swap"] for m in mexc.markets.values())
    btc = mexc.markets["BTC/USDT"]
    assert (btc["id"], btc["base"], btc["quote"], btc["active"]) == ("BTCUSDT", "BTC", "USDT", True)
    assert btc["precision"] == {"amount": 1e-6, "price": 0.01}
    assert btc["limits"]["amount"]["min"] == 1e-6 and btc["limits"]["cost"]["min"] == 1
    assert (btc["taker"], btc["maker"]) == (0.0005, 0)
    assert mexc.markets["SRM/USDT"]["active"] is False  # its listing is halted
    assert {"BTC", "USDT", "TGT"} <= set(mexc.currencies)  # from the signed capital/config/getall


def test_fetch_time_is_the_market_clock(emulator, mexc):
    before = emulator.clock.now_ms()
    served = mexc.fetch_time()
    assert before <= served <= emulator.clock.now_ms()
    emulator.clock.advance(5 * HOUR)
    assert mexc.fetch_time() >= served + 5 * HOUR


def test_ticker_and_order_book_straddle_the_traded_price(emulator, mexc):
    ticker = mexc.fetch_ticker("BTC/USDT")
    assert ticker["bid"] < ticker["last"] < ticker["ask"]
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert ticker["baseVolume"] > 0 and ticker["quoteVolume"] > ticker["baseVolume"]
    assert ticker["open"] == ticker["previousClose"]
    book = mexc.fetch_order_book("BTC/USDT", 20)
    bids, asks = [p for p, _ in book["bids"]], [p for p, _ in book["asks"]]
    assert len(bids) == len(asks) == 20
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks) and bids[0] < asks[0]
    traded = emulator.call(lambda: emulator.state.market.price_at("BTC/USDT", book["timestamp"]))
    assert bids[0] < traded < asks[0]
    half_spread = 0.5e-4 * traded  # BTC/USDT's half spread is 0.5 bps
    assert asks[0] - bids[0] == pytest.approx(2 * half_spread, abs=0.03)
    assert all(size > 0 for _, size in book["bids"] + book["asks"])


def test_fetch_tickers_one_or_all(mexc):
    everything = mexc.fetch_tickers()
    assert len(everything) == 25 and everything["ETH/USDT"]["last"] > 0
    one = mexc.fetch_tickers(["ETH/USDT"])
    assert list(one) == ["ETH/USDT"]


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_fetch_ohlcv_returns_consecutive_bars_from_since(mexc, timeframe):
    step = mexc.parse_timeframe(timeframe) * 1000
    now = mexc.fetch_time()
    since = now - now % step - 120 * step
    bars = mexc.fetch_ohlcv("ETH/USDT", timeframe, since=since, limit=100)
    assert [bar[0] for bar in bars] == list(range(since, since + 100 * step, step))
    for _, open_, high, low, close, volume in bars:
        assert low <= min(open_, close) <= max(open_, close) <= high and volume > 0


def test_longer_bars_aggregate_the_minute_bars(mexc):
    now = mexc.fetch_time()
    hour = now - now % HOUR - 2 * HOUR
    [(_, open_, high, low, close, volume)] = mexc.fetch_ohlcv("SOL/USDT", "1h", since=hour, limit=1)
    minutes = mexc.fetch_ohlcv("SOL/USDT", "1m", since=hour, limit=60)
    assert len(minutes) == 60
    assert open_ == minutes[0][1] and close == minutes[-1][4]
    assert high == max(m[2] for m in minutes) and low == min(m[3] for m in minutes)
    assert volume == pytest.approx(sum(m[5] for m in minutes), rel=1e-6)


def test_fetch_ohlcv_serves_at_most_1000_bars_a_call(mexc):
    now = mexc.fetch_time()
    since = now - now % MINUTE - 3000 * MINUTE
    until = since + 1500 * MINUTE
    bars = mexc.fetch_ohlcv("BTC/USDT", "1m", since=since, limit=1500, params={"until": until})
    assert len(bars) == 1000


def test_without_since_the_latest_bars_end_with_the_forming_one(mexc):
    bars = mexc.fetch_ohlcv("BTC/USDT", "1m", limit=5)
    now = mexc.fetch_time()
    assert [bar[0] for bar in bars] == [now - now % MINUTE - k * MINUTE for k in range(4, -1, -1)]


def test_fetch_balance_shows_the_starting_funds(mexc):
    balance = mexc.fetch_balance()
    assert balance["USDT"] == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    assert "BTC" not in balance["total"]


def test_market_orders_buy_and_sell_by_amount_and_by_cost(mexc):
    bought = mexc.create_order("BTC/USDT", "market", "buy", 0.01)
    by_cost = mexc.create_market_buy_order_with_cost("ETH/USDT", 500)
    sold = mexc.create_order("BTC/USDT", "market", "sell", 0.004)
    sold_by_cost = mexc.create_market_sell_order_with_cost("BTC/USDT", 100)
    for order, symbol in ((bought, "BTC/USDT"), (by_cost, "ETH/USDT"), (sold, "BTC/USDT"),
                          (sold_by_cost, "BTC/USDT")):
        assert order["id"].startswith("C02__")
        fetched = mexc.fetch_order(order["id"], symbol)
        assert fetched["status"] == "closed" and fetched["filled"] == fetched["amount"]
    eth = mexc.fetch_order(by_cost["id"], "ETH/USDT")
    assert 499 <= eth["cost"] <= 500  # as much ETH as 500 USDT buys in whole lots
    sold_for = mexc.fetch_order(sold_by_cost["id"], "BTC/USDT")
    lot_value = sold_for["average"] * mexc.market("BTC/USDT")["precision"]["amount"]
    assert 100 - lot_value <= sold_for["cost"] <= 100  # whole lots: at most one lot short of the cost
    trades = mexc.fetch_my_trades("BTC/USDT")
    assert [t["side"] for t in trades] == ["buy", "sell", "sell"]
    assert all(t["takerOrMaker"] == "taker" for t in trades)
    assert trades[0]["fee"]["currency"] == "BTC" and trades[1]["fee"]["currency"] == "USDT"


def test_limit_orders_rest_list_and_cancel(mexc):
    price = mexc.fetch_ticker("BTC/USDT")["bid"]
    buy = mexc.create_order("BTC/USDT", "limit", "buy", 0.01, round(price * 0.9, 2))
    mexc.create_order("BTC/USDT", "market", "buy", 0.02)
    sell = mexc.create_order("BTC/USDT", "limit", "sell", 0.015, round(price * 1.1, 2))
    assert {o["id"] for o in mexc.fetch_open_orders("BTC/USDT")} == {buy["id"], sell["id"]}
    balance = mexc.fetch_balance()
    assert balance["USDT"]["used"] == pytest.approx(0.01 * round(price * 0.9, 2))
    assert balance["BTC"]["used"] == pytest.approx(0.015)
    cancelled = mexc.cancel_order(buy["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"
    assert mexc.fetch_order(buy["id"], "BTC/USDT")["status"] == "canceled"
    assert [o["id"] for o in mexc.fetch_open_orders("BTC/USDT")] == [sell["id"]]
    assert len(mexc.cancel_all_orders("BTC/USDT")) == 1
    assert mexc.fetch_balance()["USDT"]["used"] == 0 and mexc.fetch_open_orders("BTC/USDT") == []
    assert [o["status"] for o in mexc.fetch_orders("BTC/USDT")] == ["canceled", "closed", "canceled"]


def test_ioc_and_fok_fill_when_marketable_and_are_cancelled_otherwise(mexc):
    ticker = mexc.fetch_ticker("ETH/USDT")
    for tif in ("IOC", "FOK"):
        crossing = mexc.create_order("ETH/USDT", "limit", "buy", 0.1, round(ticker["ask"] * 1.01, 2),
                                     {"timeInForce": tif})
        resting = mexc.create_order("ETH/USDT", "limit", "buy", 0.1, round(ticker["bid"] * 0.99, 2),
                                    {"timeInForce": tif})
        filled = mexc.fetch_order(crossing["id"], "ETH/USDT")
        assert (filled["status"], filled["filled"], filled["timeInForce"]) == ("closed", 0.1, tif)
        assert filled["average"] <= ticker["ask"] * 1.01  # filled at the touch, not the limit
        killed = mexc.fetch_order(resting["id"], "ETH/USDT")
        assert (killed["status"], killed["filled"]) == ("canceled", 0.0)
    assert mexc.fetch_open_orders("ETH/USDT") == []
    assert mexc.fetch_balance()["USDT"]["used"] == 0


def test_a_limit_maker_order_that_would_take_is_rejected(mexc):
    import ccxt

    ask = mexc.fetch_ticker("ETH/USDT")["ask"]
    with pytest.raises(ccxt.InvalidOrder, match="30041"):
        mexc.create_order("ETH/USDT", "limit", "buy", 0.1, round(ask * 1.01, 2), {"postOnly": True})
    resting = mexc.create_order("ETH/USDT", "limit", "buy", 0.1, round(ask * 0.98, 2), {"postOnly": True})
    assert mexc.fetch_order(resting["id"], "ETH/USDT")["status"] == "open"


def test_test_orders_are_checked_but_never_placed(mexc):
    import ccxt

    mexc.create_order("BTC/USDT", "market", "buy", 0.01, None, {"test": True})
    with pytest.raises(ccxt.InsufficientFunds):
        mexc.create_order("BTC/USDT", "market", "buy", 10, None, {"test": True})
    assert mexc.fetch_orders("BTC/USDT") == [] and mexc.fetch_balance()["USDT"]["free"] == 100000


def test_public_trades_are_recent_and_trade_inside_the_bars(mexc):
    trades = mexc.fetch_trades("BTC/USDT", limit=50)
    now = mexc.fetch_time()
    stamps = [t["timestamp"] for t in trades]
    assert len(trades) == 50 and stamps == sorted(stamps)
    assert now - 30 * MINUTE < stamps[0] <= stamps[-1] <= now
    bars = mexc.fetch_ohlcv("BTC/USDT", "1m", since=stamps[0] - stamps[0] % MINUTE, limit=40)
    low, high = min(b[3] for b in bars), max(b[2] for b in bars)
    assert all(low <= t["price"] <= high and t["amount"] > 0 for t in trades)
    recent = mexc.fetch_trades("BTC/USDT", limit=5, params={"method": "spotPublicGetTrades"})
    assert len(recent) == 5 and {t["side"] for t in recent} <= {"buy", "sell"}


def test_bids_and_asks_and_prices_of_every_market(mexc):
    quotes = mexc.fetch_bids_asks()
    assert len(quotes) == 25 and all(q["bid"] < q["ask"] for q in quotes.values())
    prices = mexc.spotPublicGetTickerPrice()
    assert {p["symbol"] for p in prices} == {m["id"] for m in mexc.markets.values()}
