"""Which users this process trades for now: the active users (with decrypted keys) that the shard ring
gives to this process, each with the exchange account their mode points at.

Paper users trade on the paper venue (`XRAY_RUNTIME_PAPER_URL`, e.g. the emulator; default: the
market-data exchange URL), live users on the live exchange — only with `live_opt_in`, which the user
store already enforces. A user who cannot be loaded (malformed settings, a key that does not decrypt)
is reported with the reason and left out; everyone else still trades.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

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

    def base_url(self, user: User) -> str | None:
        if user.mode == "live":
            return self.settings.live_url
        return self.settings.paper_url or self.market_url

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
        if not reread and owned == set(self.users):
            return None  # the same users with the same settings: nothing to rebuild
        users: dict[str, User] = {}
        accounts: dict[str, ExchangeAccount] = {}
        for user, credentials in loaded:
            if user.user_id not in owned:
                continue
            previous = self.accounts.get(user.user_id)
            account = ExchangeAccount(user.user_id, user.exchange, self.base_url(user), credentials.api_key,
                                      credentials.api_secret)
            accounts[user.user_id] = previous if previous == account else account
            users[user.user_id] = user
            self.secrets.update((credentials.api_key.get_secret_value(),
                                 credentials.api_secret.get_secret_value()))
        added, removed = set(users) - set(self.users), set(self.users) - set(users)
        for problem in set(problems) - set(self.problems):  # each new problem once, not every poll
            log.warning("user not loaded", extra={"event": "user_problem", "user_id": problem.user_id,
                                                   "reason": problem.reason})
        self.users, self.accounts, self.problems = users, accounts, problems
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
