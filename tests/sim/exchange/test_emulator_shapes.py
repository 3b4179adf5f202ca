"""The emulator's JSON has the fields and value types of recorded MEXC traffic (tests/data/mexc_api)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

MEXC_API = Path(__file__).resolve().parents[2] / "data" / "mexc_api"
RESPONSES = json.loads((MEXC_API / "response_mexc.json").read_text())["methods"]
MARKETS = json.loads((MEXC_API / "markets_mexc_raw_info.json").read_text())


def _recorded(method: str, index: int = 0) -> Any:
    return RESPONSES[method][index]["httpResponse"]


def _types(entry: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in entry.items()}


def _assert_same_shape(served: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Same field names, and each field a string/number/bool/list exactly when MEXC's is (a null in
    the recording says nothing about the type)."""
    assert set(served) == set(recorded)
    for key, value in recorded.items():
        if value is not None and served[key] is not None:
            assert type(served[key]) is type(value), key


def test_exchange_info_entries_are_shaped_like_mexc_s(mexc):
    served = mexc.spotPublicGetExchangeInfo({"symbol": "ADAUSDT"})
    assert set(served) == {"timezone", "serverTime", "rateLimits", "exchangeFilters", "symbols"}
    [entry] = served["symbols"]
    [recorded] = [s for s in MARKETS["spot_exchangeInfo_symbols"] if s["symbol"] == "ADAUSDT"]
    _assert_same_shape(entry, recorded)
    assert (entry["status"], entry["isSpotTradingAllowed"]) == ("1", True)
    halted = mexc.spotPublicGetExchangeInfo({"symbols": "SRMUSDT,BTCUSDT"})["symbols"]
    assert [(s["symbol"], s["status"], s["isSpotTradingAllowed"]) for s in halted] == \
        [("SRMUSDT", "2", False), ("BTCUSDT", "1", True)]


def test_klines_rows_are_shaped_like_mexc_s(mexc):
    [row] = mexc.spotPublicGetKlines({"symbol": "BTCUSDT", "interval": "60m", "limit": 1})
    [recorded] = _recorded("fetchOHLCV")
    assert [type(v) for v in row] == [type(v) for v in recorded]
    assert row[6] - row[0] == recorded[6] - recorded[0] == 3_600_000
    for text in row[1:6] + row[7:]:
        assert len(text.split(".")[-1]) <= 6 if "." in text else text.isdigit()  # no float noise


@pytest.mark.parametrize(("method", "call"), [
    ("fetchTicker", lambda ex: ex.spotPublicGetTicker24hr({"symbol": "BTCUSDT"})),
    ("fetchOrderBook", lambda ex: ex.spotPublicGetDepth({"symbol": "BTCUSDT", "limit": 1})),
    ("fetchTrades", lambda ex: ex.spotPublicGetAggTrades({"symbol": "BTCUSDT", "limit": 1})[0]),
])
def test_market_data_is_shaped_like_mexc_s(mexc, method, call):
    _assert_same_shape(call(mexc), _recorded(method) if method != "fetchTrades" else _recorded(method)[0])


def test_order_answers_are_shaped_like_mexc_s(mexc):
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    created = mexc.spotPrivatePostOrder(order)
    recorded = _recorded("createOrder")
    _assert_same_shape(created, recorded)
    assert created["orderId"].startswith("C02__") and len(created["orderId"]) == len(recorded["orderId"])
    queried = mexc.spotPrivateGetAllOrders({"symbol": "BTCUSDT"})
    _assert_same_shape(queried[0], _recorded("fetchOrders")[0])
    trades = mexc.spotPrivateGetMyTrades({"symbol": "BTCUSDT"})
    _assert_same_shape(trades[0], _recorded("fetchMyTrades")[0])
    assert (trades[0]["commissionAsset"], trades[0]["isBuyer"], trades[0]["isMaker"]) == ("BTC", True, False)


def test_the_account_lists_only_held_assets_as_strings(mexc):
    mexc.create_order("ETH/USDT", "market", "buy", 0.1)
    account = mexc.spotPrivateGetAccount()
    assert account["accountType"] == "SPOT" and account["permissions"] == ["SPOT"]
    assert [b["asset"] for b in account["balances"]] == ["ETH", "USDT"]
    assert all(isinstance(b["free"], str) and isinstance(b["locked"], str) for b in account["balances"])
    assert account["balances"][0]["free"] == "0.09995"  # 0.1 ETH less the 0.0005 taker fee, exactly
