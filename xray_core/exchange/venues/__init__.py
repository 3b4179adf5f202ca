"""Venue traits: one frozen `VenueTraits` per exchange, looked up by ccxt id (`traits_for`)."""

from __future__ import annotations

from dataclasses import replace

from xray_core.exchange.venues.mexc import MEXC
from xray_core.exchange.venues.traits import GENERIC, SCOPE_KINDS, RateLimits, ScopeKind, VenueTraits

REGISTRY: dict[str, VenueTraits] = {traits.exchange_id: traits for traits in (MEXC,)}


def traits_for(exchange_id: str) -> VenueTraits:
    """The traits of `exchange_id`; the cautious `GENERIC` ones (under that id) for a venue that has
    no entry of its own."""
    known = REGISTRY.get(exchange_id)
    return known if known is not None else replace(GENERIC, exchange_id=exchange_id)


def is_known(exchange_id: str) -> bool:
    return exchange_id in REGISTRY


__all__ = ["GENERIC", "MEXC", "REGISTRY", "SCOPE_KINDS", "RateLimits", "ScopeKind", "VenueTraits", "is_known",
           "traits_for"]
