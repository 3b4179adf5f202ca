"""What a MEXC endpoint handler sees: its parsed parameters, the state, the time and the caller.

Handlers are plain functions `Context -> JSON-able data` that raise `ApiError` to refuse; the server
(`dispatch`) does HTTP, authentication, weights and faults around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from xray_sim.exchange import apierror
from xray_sim.exchange.accounts import Account
from xray_sim.exchange.decimals import parse_decimal
from xray_sim.exchange.state import EmulatorState
from xray_sim.exchange.universe import MarketSpec


class Params:
    """Query parameters with MEXC's refusals for missing or malformed values."""

    def __init__(self, query: Mapping[str, str]) -> None:
        self._query = query

    def has(self, name: str) -> bool:
        return bool(self._query.get(name))

    def text(self, name: str) -> str | None:
        value = self._query.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise apierror.missing_param(name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise apierror.illegal_param(name) from None

    def limit(self, default: int, maximum: int) -> int:
        """MEXC's `limit`: the default when absent, at most `maximum`, at least 1."""
        value = self.integer("limit", default)
        assert value is not None
        return max(1, min(value, maximum))

    def decimal(self, name: str) -> Decimal | None:
        value = self.text(name)
        if value is None:
            return None
        parsed = parse_decimal(value)
        if parsed is None:
            raise apierror.illegal_param(name)
        return parsed


@dataclass(frozen=True, slots=True)
class Context:
    state: EmulatorState
    params: Params
    now_ms: int
    account: Account | None = None
    partial_ratio: Decimal | None = None  # a partial_fill fault for this order placement

    def spec(self, name: str = "symbol") -> MarketSpec:
        """The market named by a required symbol parameter (MEXC id, e.g. BTCUSDT)."""
        spec = self.state.market.spec(self.params.required(name).upper())
        if spec is None:
            raise apierror.invalid_symbol()
        return spec

    def specs(self) -> list[MarketSpec]:
        """The markets named by `symbol` or a comma-separated `symbols`, or all of them."""
        names = self.params.text("symbol") or self.params.text("symbols")
        if names is None:
            return list(self.state.market.specs)
        chosen = []
        for name in names.split(","):
            spec = self.state.market.spec(name.strip().upper())
            if spec is None:
                raise apierror.invalid_symbol()
            chosen.append(spec)
        return chosen

    @property
    def user(self) -> Account:
        """The authenticated caller of a private endpoint."""
        assert self.account is not None, "only private endpoints ask for the caller"
        return self.account


Handler = Callable[[Context], object]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    private: bool = False
