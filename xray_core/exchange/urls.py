"""Pointing a stock ccxt exchange at another host (the emulator) by rewriting only its API URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from xray_core.exchange.venues import traits_for


def rebase_api_urls(urls: Any, base_url: str, exchange_id: str) -> Any:
    """Return a copy of ccxt's `urls['api']` tree with the exchange's API hosts replaced by `base_url`.

    Where the venue's traits list its API hosts (`api_hosts`), only URLs on those hosts are rebased:
    for MEXC `https://api.mexc.com/api/v1/contract` becomes `{base_url}/api/v1/contract` and
    `https://www.mexc.com/open/api/v2` becomes `{base_url}/open/api/v2`. For other exchanges every
    absolute URL's scheme and host are replaced, keeping the path.
    """
    base_url = base_url.rstrip("/")
    hosts = traits_for(exchange_id).api_hosts or None

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: rewrite(item) for key, item in value.items()}
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            return value
        if hosts is not None:
            for host in hosts:
                if value == host or value.startswith(host + "/"):
                    return base_url + value[len(host) :]
            return value
        parts = urlsplit(value)
        return base_url + value[len(f"{parts.scheme}://{parts.netloc}") :]

    return rewrite(urls)
