"""The runtime's users: who trades, on which exchange, in which mode, within which risk limits.

API keys and secrets are stored only as Fernet tokens (`api_key_enc`, `api_secret_enc`); the only way
back to plaintext is `UserStore.credentials` (or `load_active_credentials`), which returns them as
`SecretStr`, hidden in every repr. What logs, rate-limit scopes and `xray users list` show instead is
`key_fingerprint`: the first 8 hex digits of sha256(api_key), enough to tell keys apart, useless to
trade with. Nothing in this module logs a key or secret or puts one into an exception message.

Live trading is opt-in twice: `mode="live"` is refused unless `live_opt_in` is set, and the table's
CHECK constraint refuses such a row even from a hand-written UPDATE.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import Engine, Row

from xray_core.errors import ConfigError, XrayError
from xray_runtime.crypto import DecryptionError, KeyVault
from xray_runtime.db import METADATA
from xray_runtime.risk_store import clear_kill
from xray_runtime.user_types import (
    MODES,
    PROFILE_NAMES,
    STATUSES,
    Credentials,
    DuplicateUserError,
    Mode,
    NewUser,
    Problem,
    RiskSettings,
    Status,
    UnknownUserError,
    User,
    check_mode,
    checked_secret,
    describe_validation,
    risk_settings,
)

# fmt: off
__all__ = [  # the store, and the value types re-exported from user_types
    "MODES", "PROFILE_NAMES", "STATUSES", "Credentials", "DuplicateUserError", "Mode", "NewUser", "Problem",
    "RiskSettings", "Status", "UnknownUserError", "User", "UserStore", "fingerprint", "risk_settings",
    "users_table",
]
# fmt: on

log = logging.getLogger(__name__)

users_table = sa.Table(
    "users",
    METADATA,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("exchange", sa.String(32), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("live_opt_in", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("risk", sa.Text, nullable=False),  # RiskSettings as JSON; validated again on every load
    sa.Column("telegram_chat_id", sa.BigInteger),  # Telegram chat ids exceed 32 bits
    sa.Column("api_key_enc", sa.Text, nullable=False),
    sa.Column("api_secret_enc", sa.Text, nullable=False),
    sa.Column("key_fingerprint", sa.String(8), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('paper', 'live')", name="ck_users_mode"),
    sa.CheckConstraint("status IN ('active', 'disabled')", name="ck_users_status"),
    sa.CheckConstraint("mode <> 'live' OR live_opt_in", name="ck_users_live_opt_in"),
    sa.Index("ix_users_status", "status"),
    sa.Index("ix_users_key_fingerprint", "key_fingerprint"),
)


NO_KEY = "none"  # the fingerprint of a paper user without an API key (the built-in paper broker)


def fingerprint(api_key: str) -> str:
    """First 8 hex digits of sha256(api_key): names a key in logs and rate-limit scopes."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:8] if api_key else NO_KEY


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything this module writes is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class UserStore:
    """Users in the runtime's relational store. `vault` may be None for work that needs no
    plaintext (list, disable, enable, risk and mode changes), so an operator can disable a user
    without holding the Fernet key."""

    def __init__(self, engine: Engine, vault: KeyVault | None) -> None:
        self.engine = engine
        self._vault = vault

    @property
    def vault(self) -> KeyVault:
        # KeyVault(None) raises the ConfigError that says how to set and generate the key.
        return self._vault if self._vault is not None else KeyVault(None)

    # -- writing -----------------------------------------------------------------------------------

    def add(
        self,
        user_id: str,
        account: str,
        api_key: str,
        api_secret: str,
        *,
        exchange: str = "mexc",
        mode: str = "paper",
        live_opt_in: bool = False,
        risk: RiskSettings | None = None,
        telegram_chat_id: int | None = None,
    ) -> User:
        """Store a new user with its credentials encrypted; DuplicateUserError if the id is taken."""
        new = NewUser(
            user_id=user_id,
            account=account,
            api_key=api_key,
            api_secret=api_secret,
            exchange=exchange,
            mode=mode,
            live_opt_in=live_opt_in,
            risk=risk or RiskSettings(),
            telegram_chat_id=telegram_chat_id,
        )
        self.add_many([new])
        user = self.get(user_id)
        log.info("added user %s (%s, %s, key %s)", user_id, user.exchange, user.mode, user.key_fingerprint)
        return user

    def add_many(self, users: Iterable[NewUser]) -> int:
        """Store many users in one transaction (one executemany): all of them, or none."""
        now = _now()
        rows = [self._row(new, now) for new in users]
        ids = [row["user_id"] for row in rows]
        repeated = sorted(user_id for user_id, count in Counter(ids).items() if count > 1)
        if repeated:
            given_twice = ", ".join(repr(user_id) for user_id in repeated[:5])
            raise DuplicateUserError(f"user id given twice: {given_twice}", "ids must be unique")
        if not rows:
            return 0
        try:
            with self.engine.begin() as con:
                con.execute(users_table.insert(), rows)
        except sa.exc.IntegrityError:
            taken = self._existing(ids)
            if not taken:
                raise
            # `from None`: the driver's message would carry the statement's (encrypted) parameters.
            raise DuplicateUserError(
                f"user {', '.join(repr(user_id) for user_id in taken[:5])} already exists",
                "choose another --id, or change the existing user (enable/disable)",
            ) from None
        log.debug("stored %d user(s)", len(rows))
        return len(rows)

    def _row(self, new: NewUser, now: datetime) -> dict[str, Any]:
        new = new.checked()
        return {
            "user_id": new.user_id,
            "account": new.account,
            "exchange": new.exchange,
            "mode": new.mode,
            "live_opt_in": new.live_opt_in,
            "status": "active",
            "disabled_reason": None,
            "risk": new.risk.model_dump_json(),
            "telegram_chat_id": new.telegram_chat_id,
            "api_key_enc": self.vault.encrypt(new.api_key),
            "api_secret_enc": self.vault.encrypt(new.api_secret),
            "key_fingerprint": fingerprint(new.api_key),
            "created_at": now,
            "updated_at": now,
        }

    def _existing(self, ids: Sequence[str]) -> list[str]:
        found: list[str] = []
        with self.engine.connect() as con:
            for start in range(0, len(ids), 500):  # bounded IN lists: SQLite limits bound parameters
                chunk = ids[start : start + 500]
                query = sa.select(users_table.c.user_id).where(users_table.c.user_id.in_(chunk))
                found += con.execute(query).scalars().all()
        return sorted(found)

    def _update(self, user_id: str, values: Mapping[str, Any]) -> User:
        with self.engine.begin() as con:
            query = users_table.update().where(users_table.c.user_id == user_id)
            changed = con.execute(query.values(**values, updated_at=_now())).rowcount
        if not changed:
            raise _unknown(user_id)
        return self.get(user_id)

    def disable(self, user_id: str, reason: str) -> User:
        """Stop trading for the user (kept in the store); the reason shows in `xray users list`."""
        if not reason or not reason.strip():
            raise ConfigError(f"user {user_id!r}: disabling needs a reason", "pass --reason TEXT")
        user = self._update(user_id, {"status": "disabled", "disabled_reason": reason.strip()})
        log.info("disabled user %s: %s", user_id, user.disabled_reason)
        return user

    def enable(self, user_id: str) -> User:
        """Trade for the user again; a kill switch that stopped them is reset (the drawdown is measured
        from their equity at the next tick)."""
        with self.engine.begin() as con:  # first: a runtime that loads the user must not see the kill
            clear_kill(con, user_id)
        user = self._update(user_id, {"status": "active", "disabled_reason": None})
        log.info("enabled user %s", user_id)
        return user

    def update_risk(self, user_id: str, risk: RiskSettings | Mapping[str, Any]) -> User:
        """Replace the risk settings, or (given a mapping) change only the named fields."""
        if not isinstance(risk, RiskSettings):
            risk = risk_settings(risk, base=self.get(user_id).risk)
        return self._update(user_id, {"risk": risk.model_dump_json()})

    def set_mode(self, user_id: str, mode: str, *, live_opt_in: bool | None = None) -> User:
        """Switch paper/live; live needs the opt-in, given now or stored earlier."""
        user = self.get(user_id)
        opt_in = user.live_opt_in if live_opt_in is None else live_opt_in
        check_mode(user_id, mode, opt_in)
        if mode == "live" and user.key_fingerprint == NO_KEY:
            raise ConfigError(f"user {user_id!r} has no API key: live trading needs one",
                              "give the user the exchange's key and secret first")
        user = self._update(user_id, {"mode": mode, "live_opt_in": opt_in})
        log.info("user %s now trades %s", user_id, mode)
        return user

    def set_credentials(self, user_id: str, api_key: str, api_secret: str) -> User:
        """Replace the user's exchange key and secret (e.g. after the user rotated them)."""
        api_key, api_secret = (
            checked_secret(user_id, "api_key", api_key),
            checked_secret(user_id, "api_secret", api_secret),
        )
        user = self._update(
            user_id,
            {
                "api_key_enc": self.vault.encrypt(api_key),
                "api_secret_enc": self.vault.encrypt(api_secret),
                "key_fingerprint": fingerprint(api_key),
            },
        )
        log.info("new credentials for user %s (key %s)", user_id, user.key_fingerprint)
        return user

    def reencrypt(self) -> tuple[int, list[Problem]]:
        """Re-encrypt every user's credentials under the vault's first key (after a key rotation);
        rows none of the keys decrypts are left as they are and reported."""
        rewrapped: list[dict[str, Any]] = []
        problems: list[Problem] = []
        with self.engine.connect() as con:
            rows = con.execute(sa.select(users_table.c.user_id, *_ENCRYPTED)).all()
        for row in rows:
            try:
                uid = row.user_id
                rewrapped.append(
                    {
                        "uid": uid,
                        "key": self.vault.rotate(row.api_key_enc, record=f"user {uid!r} api_key"),
                        "secret": self.vault.rotate(row.api_secret_enc, record=f"user {uid!r} api_secret"),
                    }
                )
            except DecryptionError as exc:
                problems.append(Problem(row.user_id, str(exc)))
        if rewrapped:
            query = (
                users_table.update()
                .where(users_table.c.user_id == sa.bindparam("uid"))
                .values(api_key_enc=sa.bindparam("key"), api_secret_enc=sa.bindparam("secret"))
            )
            with self.engine.begin() as con:
                con.execute(query, rewrapped)
        return len(rewrapped), problems

    # -- reading -----------------------------------------------------------------------------------

    def get(self, user_id: str) -> User:
        with self.engine.connect() as con:
            row = con.execute(sa.select(*_PUBLIC).where(users_table.c.user_id == user_id)).first()
        if row is None:
            raise _unknown(user_id)
        return _to_user(row)

    def list(self, status: str | None = None) -> list[User]:
        """Every user (or those with `status`), by id; a stored row that cannot be read raises
        (use `scan` to get the readable ones plus the problems)."""
        users, problems = self.scan(status)
        if problems:
            raise XrayError(f"user {problems[0].user_id!r}: {problems[0].reason}", "fix or remove the row")
        return users

    # `builtins.list` below: inside this class `list` names the method above.
    def scan(self, status: str | None = None) -> tuple[builtins.list[User], builtins.list[Problem]]:
        """Like `list`, but unreadable rows are reported instead of raising."""
        if status is not None and status not in STATUSES:
            raise ConfigError(f"status {status!r} is not one of active, disabled", "use active or disabled")
        query = sa.select(*_PUBLIC).order_by(users_table.c.user_id)
        if status is not None:
            query = query.where(users_table.c.status == status)
        with self.engine.connect() as con:
            rows = con.execute(query).all()
        users: list[User] = []
        problems: list[Problem] = []
        for row in rows:
            try:
                users.append(_to_user(row))
            except _RowError as exc:
                problems.append(Problem(row.user_id, str(exc)))
        return users, problems

    def credentials(self, user_id: str) -> Credentials:
        """The user's decrypted key and secret, as SecretStr."""
        query = sa.select(*_PUBLIC, *_ENCRYPTED).where(users_table.c.user_id == user_id)
        with self.engine.connect() as con:
            row = con.execute(query).first()
        if row is None:
            raise _unknown(user_id)
        return self._decrypt(row)

    def load_active(self) -> tuple[builtins.list[User], builtins.list[Problem]]:
        """The active users ready to trade. A row with malformed risk settings or credentials that do
        not decrypt is not returned but reported in `problems`; the other rows still load."""
        loaded, problems = self.load_active_credentials()
        return [user for user, _ in loaded], problems

    def load_active_credentials(
        self,
    ) -> tuple[builtins.list[tuple[User, Credentials]], builtins.list[Problem]]:
        """`load_active`, with each user's decrypted credentials (one query for all users)."""
        query = sa.select(*_PUBLIC, *_ENCRYPTED).where(users_table.c.status == "active")
        with self.engine.connect() as con:
            rows = con.execute(query.order_by(users_table.c.user_id)).all()
        loaded: list[tuple[User, Credentials]] = []
        problems: list[Problem] = []
        for row in rows:
            try:
                loaded.append((_to_user(row), self._decrypt(row)))
            except (_RowError, DecryptionError) as exc:
                problems.append(Problem(row.user_id, str(exc)))
                log.warning("user %s not loaded: %s", row.user_id, exc)
        log.debug("loaded %d active user(s), %d problem(s)", len(loaded), len(problems))
        return loaded, problems

    def _decrypt(self, row: Row[*tuple[Any, ...]]) -> Credentials:
        vault, uid = self.vault, row.user_id
        return Credentials(
            user_id=uid,
            exchange=row.exchange,
            key_fingerprint=row.key_fingerprint,
            api_key=SecretStr(vault.decrypt(row.api_key_enc, record=f"user {uid!r} api_key")),
            api_secret=SecretStr(vault.decrypt(row.api_secret_enc, record=f"user {uid!r} api_secret")),
        )


_ENCRYPTED = (users_table.c.api_key_enc, users_table.c.api_secret_enc)
# Every column but the encrypted ones: reads that need no plaintext never fetch the ciphertext.
_PUBLIC = tuple(column for column in users_table.c if column not in _ENCRYPTED)


class _RowError(Exception):
    """A stored row that does not make a valid User (malformed risk JSON, unknown mode...)."""


def _unknown(user_id: str) -> UnknownUserError:
    return UnknownUserError(f"no user {user_id!r}", "see the ids with `xray users list`")


def _to_user(row: Row[*tuple[Any, ...]]) -> User:
    try:
        risk = RiskSettings(**json.loads(row.risk))
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError and ValidationError are ValueErrors
        detail = describe_validation(exc, "") if isinstance(exc, ValidationError) else "not a JSON object"
        raise _RowError(f"stored risk settings are malformed: {detail}") from None
    if row.mode not in MODES or row.status not in STATUSES:
        raise _RowError(f"stored mode {row.mode!r} / status {row.status!r} is not valid")
    return User(
        user_id=row.user_id,
        account=row.account,
        exchange=row.exchange,
        mode=row.mode,
        live_opt_in=bool(row.live_opt_in),
        status=row.status,
        disabled_reason=row.disabled_reason,
        risk=risk,
        telegram_chat_id=row.telegram_chat_id,
        key_fingerprint=row.key_fingerprint,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )
