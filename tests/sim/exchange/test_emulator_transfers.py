"""Deposits and withdrawals on the emulator: the admin API moves money, stock ccxt reads the history
through MEXC's capital endpoints (fetch_deposits / fetch_withdrawals)."""

from __future__ import annotations

import requests


def test_a_withdrawal_and_a_deposit_move_the_balance_and_are_listed_to_ccxt(mexc, admin):
    before = mexc.fetch_balance()["USDT"]["total"]
    start = mexc.fetch_time()
    out = admin.transfer(mexc.apiKey, "USDT", "-400.5")
    came = admin.transfer(mexc.apiKey, "BTC", "0.25")
    assert mexc.fetch_balance()["USDT"]["total"] == before - 400.5
    assert mexc.fetch_balance()["BTC"]["total"] == 0.25
    [withdrawal] = mexc.fetch_withdrawals(since=start)
    assert (withdrawal["id"], withdrawal["currency"], withdrawal["amount"]) == (out["id"], "USDT", 400.5)
    assert withdrawal["status"] == "ok" and withdrawal["type"] == "withdrawal"
    assert withdrawal["timestamp"] == out["time"] >= start
    [deposit] = mexc.fetch_deposits(since=start)
    assert (deposit["txid"], deposit["currency"], deposit["amount"]) == (came["id"], "BTC", 0.25)
    assert deposit["status"] == "ok" and deposit["type"] == "deposit"
    assert mexc.fetch_deposits(since=came["time"] + 1) == []  # startTime filters
    listed = admin.account(mexc.apiKey)["transfers"]
    assert [(t["asset"], t["amount"]) for t in listed] == [("USDT", "-400.5"), ("BTC", "0.25")]


def test_a_withdrawal_of_more_than_is_free_and_bad_amounts_are_refused(mexc, admin):
    free = mexc.fetch_balance()["USDT"]["free"]
    too_much = requests.post(f"{admin.url}/accounts/{mexc.apiKey}/withdraw",
                             json={"asset": "USDT", "amount": str(free + 1)}, timeout=5)
    assert too_much.status_code == 400 and "USDT" in too_much.json()["error"]
    for amount in ("0", "-5", "9E999999", "NaN", "abc"):
        bad = requests.post(f"{admin.url}/accounts/{mexc.apiKey}/deposit",
                            json={"asset": "USDT", "amount": amount}, timeout=5)
        assert bad.status_code == 400 and "amount" in bad.json()["error"], amount
    unknown = requests.post(f"{admin.url}/accounts/nobody/deposit", json={"asset": "USDT", "amount": "1"},
                            timeout=5)
    assert unknown.status_code == 404
    assert mexc.fetch_balance()["USDT"]["free"] == free and mexc.fetch_withdrawals() == []
