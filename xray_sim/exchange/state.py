"""Everything one running emulator holds: clock, market, accounts, orders, limits, faults, counters.

It lives in the server's event loop; handlers run to completion without awaiting in between, so the
engine and the books never see interleaved updates.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from xray_sim.exchange import shapes
from xray_sim.exchange.accounts import AccountBook
from xray_sim.exchange.book import BookModel
from xray_sim.exchange.clock import MarketClock
from xray_sim.exchange.config import EmulatorConfig
from xray_sim.exchange.faults import FaultInjector, parse_fault_spec
from xray_sim.exchange.market import SyntheticMarket
from xray_sim.exchange.matching import MatchingEngine
from xray_sim.exchange.protocol import MarketSource
from xray_sim.exchange.ratelimit import RateLimiter, Scope
from xray_sim.exchange.replay import ReplayMarket
from xray_sim.exchange.universe import DEFAULT_UNIVERSE, long_tail


@dataclass
class RequestStats:
    """What the server answered (admin GET /_emulator/stats)."""

    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    errors: Counter[int] = field(default_factory=Counter)  # MEXC error code -> answers
    fault_429: int = 0  # 429s answered by a burst429 fault (limiter 429s are RateLimiter.violations)
    dropped: int = 0  # connections closed without an answer (drop and never-answering timeout faults)
    overtaken: int = 0  # requests processed after their connection was closed (overtake faults)
    # Overtakes kept for later processing: a fired overtake rule whose request met another fault first
    # (the first rule to fire decides), or whose body was gone, is never processed.
    overtakes_kept: int = 0
    banned: int = 0  # 418s answered by a ban418 fault


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        if config.start_ms is None:
            self.clock = MarketClock(speed=config.speed)  # starts now
        else:
            self.clock = MarketClock(speed=config.speed, start_ms=config.start_ms)
        self.market = build_market(config, self.clock.start_ms)
        self.accounts = AccountBook(config.starting_funds)
        for credential in config.credentials:
            self.accounts.register(credential.key, credential.secret.get_secret_value())
        self.engine = MatchingEngine(self.market, self.accounts, duplicate_ids=config.duplicate_ids)
        self.book = BookModel(self.market, config.seed)
        self.limiter = RateLimiter(config.weight_limit, config.weight_window_s)
        self.faults = FaultInjector(config.seed, parse_fault_spec(config.faults))
        self.stats = RequestStats()
        # Set when the server shuts down: ends requests that a timeout fault holds unanswered.
        self.closing = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()  # requests an overtake fault processes later
        self._static_info = {spec.market_id: shapes.exchange_info_symbol(spec, trading=True)
                             for spec in self.market.specs}
        self._coins = _coins(self.market)

    def now_ms(self) -> int:
        return self.clock.now_ms()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background (kept referenced until it ends)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def exchange_info_symbols(self, now_ms: int, market_ids: list[str] | None = None) -> list[shapes.Json]:
        """exchangeInfo entries (built once; only the trading status changes over time)."""
        chosen = market_ids if market_ids is not None else list(self._static_info)
        entries = []
        for market_id in chosen:
            entry = self._static_info[market_id]
            spec = self.market.spec(market_id)
            if spec is not None and not self.market.is_trading(spec.symbol, now_ms):
                entry = {**entry, "status": "2", "isSpotTradingAllowed": False}
            entries.append(entry)
        return entries

    def coins(self) -> list[shapes.Json]:
        return self._coins

    def snapshot(self) -> dict[str, object]:
        """Counters for GET /_emulator/stats (the load test reads rate_limit_violations)."""
        violations = self.limiter.violations
        return {
            "requests": self.stats.requests,
            "by_endpoint": dict(self.stats.by_endpoint),
            "errors": {str(code): n for code, n in self.stats.errors.items()},
            "rate_limit_violations": sum(violations.values()),
            "responses_429": {"ip": violations[Scope.IP], "key": violations[Scope.KEY],
                              "fault": self.stats.fault_429},
            "dropped": self.stats.dropped,
            "overtaken": self.stats.overtaken,
            "overtakes_kept": self.stats.overtakes_kept,
            "banned_418": self.stats.banned,
            "orders": self.engine.stats.orders,
            "orders_open": self.engine.open_count,
            "orders_rejected": self.engine.stats.rejected,
            "duplicate_ids": self.engine.duplicate_ids,
            "fills": self.engine.stats.fills,
            "faults_fired": dict(self.faults.fired),
            "accounts": len(self.accounts),
            "clock": {"now_ms": self.now_ms(), "speed": self.clock.speed, "start_ms": self.clock.start_ms},
        }


def build_market(config: EmulatorConfig, start_ms: int) -> MarketSource:
    """Replay the configured data folder, or synthesise the default universe."""
    if config.data_dir is not None:
        return ReplayMarket(config.data_dir, start_ms)
    universe = DEFAULT_UNIVERSE + long_tail(config.extra_listings)
    return SyntheticMarket(seed=config.seed, start_ms=start_ms, history_days=config.history_days,
                           universe=universe)


def _coins(market: MarketSource) -> list[shapes.Json]:
    names: dict[str, str] = {}
    for spec in market.specs:
        names.setdefault(spec.base, spec.full_name or spec.base)
        names.setdefault(spec.quote, {"USDT": "Tether USD"}.get(spec.quote, spec.quote))
    return [shapes.coin(code, name) for code, name in sorted(names.items())]
