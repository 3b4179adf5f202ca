"""Which users this process trades for now: the active users (with decrypted keys) that the shard ring
gives to this process, each with the exchange account their mode points at.

Where a user trades (`route`), the rules of `xray_core.exchange.routing`:

* paper (the default): the built-in paper broker, on the live market data with virtual balances in
  the journal's database; or, when `XRAY_RUNTIME_PAPER_URL` is set, that sandbox — only a loopback
  address (the emulator) or a sandbox host of the venue's traits. A paper user is never routed to
  the market-data URL or a live API host: a URL that is not allowed leaves the user out, with the
  reason, instead of trading anywhere.
* live: only with the user's opt-in (the user store enforces it, and so does this check) and an
  explicitly configured live venue (`XRAY_RUNTIME_LIVE_URL`).

The exchange pool checks the same rules again where it builds a client. A user who cannot be loaded
(malformed settings, a key that does not decrypt, a refused route) is reported with the reason and
left out; everyone else still trades.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from xray_core.exchange.routing import VenueRouteError, check_live_url, check_paper_url
from xray_core.exchange.venues import traits_for
from xray_runtime.book import Sizing
from xray_runtime.exchange_pool import ExchangeAccount
from xray_runtime.settings import RuntimeSettings
from xray_runtime.sharding import Sharding
from xray_runtime.users import Credentials, Problem, User, UserStore

log = logging.getLogger(__name__)


@dataclass
class Roster:
    """The users of this process, refreshed from the database and the shard ring."""

    store: UserStore
    sharding: Sharding
    settings: RuntimeSettings
    market_url: str | None
    users: dict[str, User] = field(default_factory=dict)
    accounts: dict[str, ExchangeAccount] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)  # to redact from logs
    refresh_s: float = 30.0
    _loaded: list[tuple[User, Credentials]] | None = None
    _loaded_problems: list[Problem] = field(default_factory=list)
    _loaded_at: float = 0.0
    _refused: set[str] = field(default_factory=set)  # owned users whose route was refused

    def route(self, user: User, credentials: Credentials) -> ExchangeAccount:
        """The account `user` trades with, or VenueRouteError saying why the user may not trade.
        `market_url` (where market data comes from) is deliberately never a trading venue."""
        who = f"user {user.user_id}"
        if user.mode == "live":
            if not user.live_opt_in:  # the store and a CHECK refuse such a row; a third refusal is cheap
                raise VenueRouteError(f"{who}: mode live without the live opt-in",
                                      "xray users add --live-opt-in")
            url: str | None = check_live_url(self.settings.live_url, who)
        else:
            url = self.settings.paper_url
            if url is not None:
                check_paper_url(url, traits_for(user.exchange), who)
                if not credentials.api_key.get_secret_value():
                    raise VenueRouteError(f"{who}: paper sandbox {url} needs an API key; the user has none",
                                          "add the user with --api-key, or unset XRAY_RUNTIME_PAPER_URL")
        return ExchangeAccount(user.user_id, user.exchange, url, credentials.api_key, credentials.api_secret,
                               live=user.mode == "live")

    async def refresh(self, force: bool = False) -> tuple[set[str], set[str]] | None:
        """Recompute this process's users; returns (users added, users removed), or None when
        nothing changed. The user table is re-read (and its keys decrypted) at most every
        `users_refresh_s`, or when `force`d; who owns whom is asked of the shard ring every time, so
        a dead process's users move promptly."""
        reread = force or self._loaded is None or time.monotonic() - self._loaded_at >= self.refresh_s
        if reread:
            self._loaded, self._loaded_problems = await asyncio.to_thread(self.store.load_active_credentials)
            self._loaded_at = time.monotonic()
        loaded, problems = self._loaded or [], self._loaded_problems
        owned = set(await self.sharding.owned([user.user_id for user, _ in loaded]))
        if not reread and owned - self._refused == set(self.users):
            return None  # the same users with the same settings: nothing to rebuild
        users: dict[str, User] = {}
        accounts: dict[str, ExchangeAccount] = {}
        problems = list(problems)
        refused_ids: set[str] = set()
        for user, credentials in loaded:
            if user.user_id not in owned:
                continue
            try:
                account = self.route(user, credentials)
            except VenueRouteError as refused:  # fail closed: this user does not trade at all
                problems.append(Problem(user.user_id, str(refused)))
                refused_ids.add(user.user_id)
                continue
            previous = self.accounts.get(user.user_id)
            accounts[user.user_id] = previous if previous == account else account
            users[user.user_id] = user
            self.secrets.update((credentials.api_key.get_secret_value(),
                                 credentials.api_secret.get_secret_value()))
        added, removed = set(users) - set(self.users), set(self.users) - set(users)
        for problem in set(problems) - set(self.problems):  # each new problem once, not every poll
            log.warning("user not loaded", extra={"event": "user_problem", "user_id": problem.user_id,
                                                   "reason": problem.reason})
        self.users, self.accounts, self.problems, self._refused = users, accounts, problems, refused_ids
        return added, removed

    def drop(self, user_id: str) -> None:
        """Forget a user this process just disabled (before the next read of the user table)."""
        if self._loaded is not None:
            self._loaded = [(user, creds) for user, creds in self._loaded if user.user_id != user_id]
        self.users.pop(user_id, None)
        self.accounts.pop(user_id, None)

    def sizing(self) -> list[tuple[str, Sizing]]:
        """Book rows in a stable order (user id)."""
        return [
            (user_id, Sizing(user.risk.profile, user.risk.trade_percentage,
                             user.risk.effective_leverage(spot=True), user.risk.margin_multiplier,
                             user.risk.max_position_usd, user.risk.max_daily_loss, user.risk.max_drawdown))
            for user_id, user in sorted(self.users.items())
        ]
