"""Venue traits: MEXC's quirks in one value, looked up by exchange id; the cautious generic default
for every other venue; and the places that read them (URL rebasing, client order ids)."""

from __future__ import annotations

import dataclasses

import pytest

from xray_core.exchange.urls import rebase_api_urls
from xray_core.exchange.venues import GENERIC, MEXC, REGISTRY, RateLimits, VenueTraits, is_known, traits_for
from xray_core.trading.orders import client_order_id


def test_mexc_is_registered_with_its_quirks():
    traits = traits_for("mexc")
    assert traits is MEXC and is_known("mexc")
    assert traits.max_client_order_id_length == 32
    assert traits.deduplicates_client_order_ids
    assert "-2013" in traits.no_such_order_codes and "-2011" in traits.no_such_order_codes
    assert traits.trades_page_limit == 100 and traits.trades_order_filter_param == "orderId"
    assert traits.max_recv_window_ms == 60_000
    limits = traits.rate_limits
    assert (limits.window_s, limits.ip_weight, limits.key_weight) == (10.0, 500, 500)
    assert (limits.private_scopes, limits.public_scopes) == (("key",), ("ip",))
    assert limits.whole_market_weight("ticker/24hr") == 40.0 and limits.whole_market_weight("klines") is None


def test_an_unregistered_venue_gets_the_cautious_generic_traits_under_its_own_id():
    traits = traits_for("kraken")
    assert not is_known("kraken") and traits.exchange_id == "kraken"
    assert dataclasses.replace(traits, exchange_id=GENERIC.exchange_id) == GENERIC
    assert not traits.deduplicates_client_order_ids  # an ambiguous send is never repeated there
    assert traits.no_such_order_codes == () and traits.trades_order_filter_param is None
    assert traits.trades_page_limit <= MEXC.trades_page_limit
    assert traits.max_recv_window_ms >= MEXC.max_recv_window_ms
    assert set(traits.rate_limits.private_scopes) == {"ip", "key"}  # charged to both, to be safe


def test_traits_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MEXC.trades_page_limit = 1000  # type: ignore[misc]


@pytest.mark.parametrize("change", [
    {"exchange_id": ""}, {"max_client_order_id_length": 0}, {"trades_page_limit": 0},
    {"max_recv_window_ms": 0},
])
def test_traits_refuse_impossible_values(change):
    with pytest.raises(ValueError):
        dataclasses.replace(MEXC, **change)


@pytest.mark.parametrize("change", [
    {"window_s": 0}, {"ip_weight": 0}, {"private_scopes": ()}, {"public_scopes": ("ip", "account")},
])
def test_rate_limits_refuse_impossible_values(change):
    with pytest.raises(ValueError):
        dataclasses.replace(MEXC.rate_limits, **change)


def test_the_registry_is_keyed_by_each_entrys_own_id():
    assert all(isinstance(t, VenueTraits) and t.exchange_id == key for key, t in REGISTRY.items())
    assert isinstance(MEXC.rate_limits, RateLimits)


def test_our_client_order_ids_fit_every_venue():
    cid = client_order_id("a-user-with-a-long-name", "SOMELONGCOIN/USDT", 1_780_000_000_000, "enter")
    for traits in [*REGISTRY.values(), GENERIC]:
        assert len(cid) <= traits.max_client_order_id_length, traits.exchange_id


def test_urls_are_rebased_on_the_hosts_the_traits_name():
    urls = {"spot": "https://api.mexc.com/api/v3", "www": "https://www.mexc.com/open/api/v2",
            "other": "https://elsewhere.example/x", "relative": "/api"}
    rebased = rebase_api_urls(urls, "http://127.0.0.1:8765/", "mexc")
    assert rebased == {"spot": "http://127.0.0.1:8765/api/v3", "www": "http://127.0.0.1:8765/open/api/v2",
                       "other": "https://elsewhere.example/x", "relative": "/api"}
    generic = rebase_api_urls({"a": "https://api.kraken.com/0/public"}, "http://127.0.0.1:9", "kraken")
    assert generic == {"a": "http://127.0.0.1:9/0/public"}  # no hosts named: every absolute URL
