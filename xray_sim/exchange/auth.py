"""Signed requests to MEXC's private spot endpoints, checked the way MEXC checks them.

ccxt's `mexc.sign` url-encodes the request parameters, appends `timestamp` and `recvWindow`, signs
that exact string with HMAC-SHA256 under the API secret, appends `&signature=<hex>` and sends the key
in the `X-MEXC-APIKEY` header; for POST and DELETE the parameters travel in the query string too.
So the server verifies the signature over the raw query string minus its `signature` parameter (plus
the raw body, which MEXC also signs when there is one).

The timestamp is checked against the *wall* clock (the client signs with its own wall clock; the
market clock may run faster): MEXC accepts `timestamp < now + 1000` and `now - timestamp <= recvWindow`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from xray_sim.exchange import apierror
from xray_sim.exchange.accounts import Account, AccountBook

API_KEY_HEADER = "X-MEXC-APIKEY"
DEFAULT_RECV_WINDOW_MS = 5000  # MEXC's default when recvWindow is not sent
FUTURE_TOLERANCE_MS = 1000  # how far ahead of the server a timestamp may be


def sign(secret: str, payload: str) -> str:
    """MEXC's signature: lowercase hex HMAC-SHA256 of `payload` keyed by the API secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(raw_query: str, body: str = "") -> tuple[str, str | None]:
    """The signed payload (query without its `signature` parameter, then the body) and the signature."""
    signature = None
    kept = []
    for part in raw_query.split("&") if raw_query else ():
        if part.startswith("signature="):
            signature = part[len("signature="):]
        else:
            kept.append(part)
    return "&".join(kept) + body, signature


def authenticate(accounts: AccountBook, api_key: str | None, raw_query: str, body: str,
                 params: Mapping[str, str], wall_ms: int, recv_window_max_ms: int) -> Account:
    """The account a private request acts for, or the ApiError MEXC answers a bad request with."""
    if not api_key:
        raise apierror.api_key_required()
    account = accounts.get(api_key)
    if account is None:
        raise apierror.unknown_api_key()
    payload, signature = split_signature(raw_query, body)
    if not signature:
        raise apierror.missing_param("signature")
    timestamp = _integer(params, "timestamp")
    if timestamp is None:
        raise apierror.missing_param("timestamp")
    recv_window = _integer(params, "recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
    if recv_window > recv_window_max_ms or recv_window <= 0:
        raise apierror.recv_window_too_large(recv_window_max_ms)
    expected = sign(account.secret, payload).encode()
    if not hmac.compare_digest(expected, signature.lower().encode("utf-8", "replace")):
        raise apierror.bad_signature()
    if timestamp >= wall_ms + FUTURE_TOLERANCE_MS or wall_ms - timestamp > recv_window:
        raise apierror.outside_recv_window()
    return account


def _integer(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise apierror.illegal_param(name) from None
