"""Where an account's signed requests may go: the rule that keeps paper money off live venues.

A paper account trades on the runtime's built-in paper broker (no URL at all), or on a sandbox the
operator names (`XRAY_RUNTIME_PAPER_URL`): only a loopback address (the emulator) or a host the
venue's traits list as its sandbox / testnet. Anything else, a venue's live API host above all, is
refused with the reason, before a client exists. A live account needs an explicit URL: nothing
trades real money by default.

Host names are compared as written, after lower-casing; "localhost" counts as loopback, as RFC 6761
reserves it. Other names are not resolved here: a sandbox is named, never guessed from DNS.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from xray_core.errors import ConfigError
from xray_core.exchange.venues import VenueTraits


class VenueRouteError(ConfigError):
    """An account would reach a venue it must not (a paper account a live host), or has none."""


def url_host(url: str) -> str:
    """The lower-cased host of `url` ("" when it has none)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed netloc (e.g. an unclosed IPv6 bracket)
        return ""


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def live_hosts(traits: VenueTraits) -> frozenset[str]:
    return frozenset(url_host(url) for url in traits.api_hosts)


def paper_url_refusal(url: str, traits: VenueTraits) -> str | None:
    """Why a paper account may not trade on `url` (None: it may). Allowed: http(s) on a loopback
    address, or on one of the venue's sandbox hosts."""
    host = url_host(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL"
    if host in live_hosts(traits):
        return f"{host} is {traits.exchange_id}'s live API: paper users never trade there"
    if is_loopback_host(host) or host in {h.lower() for h in traits.sandbox_hosts}:
        return None
    sandboxes = ", ".join(traits.sandbox_hosts) or "none"
    return (f"{host} is neither loopback nor a sandbox of {traits.exchange_id} (its sandboxes: {sandboxes}): "
            "paper users trade on the built-in paper broker, the emulator on loopback, or a listed sandbox")


def check_paper_url(url: str, traits: VenueTraits, who: str) -> str:
    """`url`'s host when a paper account may trade there, else VenueRouteError naming `who`."""
    refusal = paper_url_refusal(url, traits)
    if refusal is not None:
        raise VenueRouteError(f"{who}: paper trading refused on {url}: {refusal}",
                              "unset XRAY_RUNTIME_PAPER_URL (the built-in paper broker) or point it at "
                              "the emulator (http://127.0.0.1:8765)")
    return url_host(url)


def check_live_url(url: str | None, who: str) -> str:
    """The live venue's URL, which must be configured explicitly."""
    if not url:
        raise VenueRouteError(f"{who}: live trading needs an explicitly configured live venue",
                              "set XRAY_RUNTIME_LIVE_URL to the exchange's API (e.g. https://api.mexc.com)")
    return url
