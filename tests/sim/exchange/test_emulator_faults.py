"""Injected faults, each seen the way a trading runtime sees it: through stock ccxt."""

from __future__ import annotations

import time

import ccxt
import pytest
import requests

from xray_core.errors import ConfigError
from xray_sim.exchange.faults import FaultInjector, FaultKind, parse_fault_spec

MINUTE = 60_000
EXAMPLE = ("latency:p=0.2:ms=150;timeout:p=0.05:path=/api/v3/order:method=POST:when=after:delay_s=3;"
           "error5xx:p=0.02:status=503;burst429:p=0.01:n=20;drop:p=0.01:when=after;"
           "partial_fill:p=0.5:ratio=0.3;seed=42")


def test_the_documented_example_spec_parses():
    spec = parse_fault_spec(EXAMPLE)
    assert spec.seed == 42
    later_kinds = (FaultKind.OVERTAKE, FaultKind.BAN418)  # not in the example
    assert [r.kind for r in spec.rules] == [k for k in FaultKind if k not in later_kinds]
    timeout = spec.rules[1]
    assert (timeout.path, timeout.methods, timeout.delay_s, timeout.probability) == \
        ("/api/v3/order", frozenset({"POST"}), 3.0, 0.05)
    assert str(spec.rules[5].ratio) == "0.3"


@pytest.mark.parametrize(("spec", "named"), [
    ("latency:p=0.2", "latency:p=0.2"),  # ms is required
    ("explode:p=1", "explode"),
    ("error5xx:status=404", "status=404"),
    ("drop:when=later", "when"),
    ("partial_fill:ratio=1", "ratio"),
    ("burst429:n=0", "n=0"),
    ("latency:ms=5:colour=red", "colour"),
    ("seed=abc", "seed=abc"),
    ("error5xx:p=2", "p=2"),
])
def test_a_malformed_spec_is_a_config_error_naming_the_part(spec, named):
    with pytest.raises(ConfigError, match=named):
        parse_fault_spec(spec)


def test_the_same_seed_makes_the_same_decisions():
    def decisions(seed_spec: str) -> list[bool]:
        injector = FaultInjector(default_seed=7, spec=parse_fault_spec(f"error5xx:p=0.3;{seed_spec}"))
        return [injector.plan("GET", "/api/v3/time") is not None for _ in range(200)]

    assert decisions("seed=1") == decisions("seed=1")
    assert decisions("seed=1") != decisions("seed=2")
    assert 30 < sum(decisions("seed=1")) < 90  # about 30% of 200


def test_faults_are_switched_at_runtime_through_the_admin_api(mexc, admin):
    admin.set_faults("error5xx:status=503:path=/api/v3/time")
    with pytest.raises(ccxt.ExchangeNotAvailable):
        mexc.fetch_time()
    assert mexc.fetch_ticker("BTC/USDT")["last"] > 0  # other paths are untouched
    admin.set_faults("")
    assert mexc.fetch_time() > 0
    assert admin.stats()["faults_fired"] == {"error5xx": 1}
    reply = requests.post(admin.url + "/faults", json={"spec": "nonsense"}, timeout=5)
    assert reply.status_code == 400 and "nonsense" in reply.json()["error"]


def test_a_timeout_after_processing_leaves_the_order_in_place(emulator, make_mexc):
    client = make_mexc(timeout=400)
    client.load_markets()
    emulator.set_faults("timeout:path=/api/v3/order:method=POST:when=after:delay_s=5")
    with pytest.raises(ccxt.RequestTimeout):
        client.create_order("BTC/USDT", "market", "buy", 0.01, None, {"clientOrderId": "lost-1"})
    emulator.set_faults("")
    order = client.fetch_order("", "BTC/USDT", {"clientOrderId": "lost-1"})
    assert order["status"] == "closed" and order["filled"] == 0.01  # accepted and filled regardless


def test_a_timeout_that_never_answers_ends_when_the_emulator_stops(start_custom_emulator, mexc_at):
    emulator = start_custom_emulator(faults="timeout:path=/api/v3/ping")
    client = mexc_at(emulator.base_url, api_key=None, timeout=300)
    with pytest.raises(ccxt.RequestTimeout):
        client.spotPublicGetPing()
    emulator.stop(timeout_s=300)  # generous: a loaded machine is slow, a hang is forever
    assert not emulator._thread.is_alive()  # the held request did not keep the server up
    with pytest.raises(requests.ConnectionError):
        requests.get(emulator.base_url + "/api/v3/ping", timeout=5)


def test_a_connection_dropped_after_processing_hides_an_existing_order(emulator, make_mexc, admin):
    client = make_mexc()
    client.load_markets()
    emulator.set_faults("drop:path=/api/v3/order:method=POST:when=after")
    with pytest.raises(ccxt.NetworkError):
        client.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "dropped-1"})
    emulator.set_faults("")
    truth = admin.account(client.apiKey)
    assert [(o["clientOrderId"], o["status"]) for o in truth["orders"]] == [("dropped-1", "FILLED")]
    retry = client.create_order("ETH/USDT", "market", "buy", 0.1, None, {"clientOrderId": "dropped-1"})
    assert retry["id"] == truth["orders"][0]["orderId"]  # the retry finds it instead of buying again


def test_a_connection_dropped_before_processing_changes_nothing(emulator, mexc, admin):
    emulator.set_faults("drop:path=/api/v3/order:method=POST")
    with pytest.raises(ccxt.NetworkError):
        mexc.create_order("ETH/USDT", "market", "buy", 0.1)
    emulator.set_faults("")
    assert admin.account(mexc.apiKey)["orders"] == []


@pytest.mark.parametrize(("status", "raised"), [(503, ccxt.ExchangeNotAvailable), (500, ccxt.ExchangeError),
                                                (502, ccxt.ExchangeNotAvailable),
                                                (504, ccxt.RequestTimeout)])
def test_server_errors_come_before_processing(emulator, mexc, admin, status, raised):
    emulator.set_faults(f"error5xx:status={status}:method=POST")
    with pytest.raises(raised):
        mexc.create_order("ETH/USDT", "market", "buy", 0.1)
    emulator.set_faults("")
    assert admin.account(mexc.apiKey)["orders"] == []


def test_a_429_burst_refuses_n_requests_then_lets_them_through(emulator, mexc, admin):
    emulator.set_faults("burst429:n=3:path=/api/v3/time:count=1")
    for _ in range(3):
        with pytest.raises(ccxt.RateLimitExceeded):
            mexc.fetch_time()
    assert mexc.fetch_time() > 0
    stats = admin.stats()
    assert stats["responses_429"]["fault"] == 3 and stats["rate_limit_violations"] == 0


def test_latency_delays_the_answer(emulator, make_mexc):
    client = make_mexc(api_key=None)
    emulator.set_faults("latency:ms=250:path=/api/v3/time")
    started = time.monotonic()
    client.fetch_time()
    assert time.monotonic() - started >= 0.25
    client.timeout = 100
    with pytest.raises(ccxt.RequestTimeout):
        client.fetch_time()


def test_a_partial_fill_completes_on_a_later_bar(emulator, mexc):
    emulator.set_faults("partial_fill:ratio=0.3")
    order = mexc.create_order("BTC/USDT", "market", "buy", 0.01)
    emulator.set_faults("")
    first = mexc.fetch_order(order["id"], "BTC/USDT")
    assert (first["status"], first["filled"], first["info"]["status"]) == ("open", 0.003, "PARTIALLY_FILLED")
    emulator.clock.advance(MINUTE)
    done = mexc.fetch_order(order["id"], "BTC/USDT")
    assert (done["status"], done["filled"]) == ("closed", 0.01)
    trades = mexc.fetch_my_trades("BTC/USDT")
    assert [t["amount"] for t in trades] == [0.003, 0.007]
    placed = order["timestamp"]
    assert trades[1]["timestamp"] == placed - placed % MINUTE + MINUTE  # the next bar's open
    assert mexc.fetch_balance()["USDT"]["used"] == 0


def test_fill_or_kill_is_never_partially_filled(emulator, mexc):
    emulator.set_faults("partial_fill:ratio=0.3")
    ask = mexc.fetch_ticker("ETH/USDT")["ask"]
    fok = mexc.create_order("ETH/USDT", "limit", "buy", 0.5, round(ask * 1.01, 2), {"timeInForce": "FOK"})
    ioc = mexc.create_order("ETH/USDT", "limit", "buy", 0.5, round(ask * 1.01, 2), {"timeInForce": "IOC"})
    assert mexc.fetch_order(fok["id"], "ETH/USDT")["filled"] == 0.5
    ioc_state = mexc.fetch_order(ioc["id"], "ETH/USDT")
    assert (ioc_state["filled"], ioc_state["info"]["status"]) == (0.15, "PARTIALLY_CANCELED")


def test_faults_can_be_configured_at_start(start_custom_emulator, mexc_at):
    emulator = start_custom_emulator(faults="error5xx:status=503:path=/api/v3/time:count=1")
    client = mexc_at(emulator.base_url, api_key=None)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        client.fetch_time()
    assert client.fetch_time() > 0  # count=1: it fired once
