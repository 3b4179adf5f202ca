"""The value types of the runtime's users (`xray_runtime.users` stores them): risk settings with
validated bounds, the stored user, decrypted credentials, a user to add, and a load problem.

Kept apart from the store so they can be used (and validated) without a database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from xray_core.errors import ConfigError, XrayError
from xray_core.risk.profiles import DEFAULT_PROFILES

Mode = Literal["paper", "live"]
Status = Literal["active", "disabled"]
MODES: tuple[str, ...] = ("paper", "live")
STATUSES: tuple[str, ...] = ("active", "disabled")
PROFILE_NAMES: tuple[str, ...] = tuple(profile.name for profile in DEFAULT_PROFILES)
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}")


class UnknownUserError(XrayError):
    """No user has this id."""


class DuplicateUserError(XrayError):
    """A user with this id already exists."""


class RiskSettings(BaseModel):
    """A user's own limits, inside which the risk profile sizes each trade.

    `leverage` is what the user allows on margin/futures markets; on spot markets the effective
    leverage is always 1 (`effective_leverage(spot=True)`), whatever is stored here.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    profile: str = Field("balanced", description="Risk profile: conservative, balanced or aggressive")
    trade_percentage: float = Field(0.1, gt=0, le=1, description="Share of equity committed per trade")
    leverage: float = Field(1.0, ge=1, le=20, description="Leverage allowed (spot: capped at 1)")
    margin_multiplier: float = Field(1.5, ge=1, description="Margin kept above the exchange's requirement")
    max_position_usd: float = Field(1000.0, gt=0, description="Largest position in USD")
    # A limit of 0 would forbid any trade, so both are strictly positive fractions.
    max_daily_loss: float = Field(0.05, gt=0, le=1, description="Stop for the day at this loss of equity")
    max_drawdown: float = Field(0.2, gt=0, le=1, description="Stop trading at this drawdown from the peak")

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in PROFILE_NAMES:
            raise ValueError(f"must be one of {', '.join(PROFILE_NAMES)}")
        return value

    def effective_leverage(self, spot: bool = True) -> float:
        """The leverage actually used: spot markets cannot borrow, so 1 there."""
        return 1.0 if spot else self.leverage


def describe_validation(exc: ValidationError, prefix: str) -> str:
    """One line naming every offending field and, for these non-secret numbers, the given value."""
    parts = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "value"
        # An unexpected field's value is not echoed: it could be anything, a pasted secret included.
        hidden = error["type"] in ("missing", "extra_forbidden")
        given = "" if hidden else f" (got {error['input']!r})"
        parts.append(f"{prefix}{name}: {error['msg']}{given}")
    return "; ".join(parts)


def risk_settings(values: Mapping[str, Any] | None = None, base: RiskSettings | None = None) -> RiskSettings:
    """`base` (default: the defaults) with `values` applied, or a ConfigError naming each bad field."""
    merged = (base.model_dump() if base else {}) | dict(values or {})
    try:
        return RiskSettings(**merged)
    except ValidationError as exc:
        hint = "fix the value(s): see `xray users add --help`"
        raise ConfigError(describe_validation(exc, "risk "), hint) from None


@dataclass(frozen=True, slots=True)
class User:
    """One user as stored, without credentials (those come only from `UserStore.credentials`)."""

    user_id: str
    account: str
    exchange: str
    mode: Mode
    live_opt_in: bool
    status: Status
    disabled_reason: str | None
    risk: RiskSettings
    telegram_chat_id: int | None
    key_fingerprint: str
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    def public_dict(self) -> dict[str, Any]:
        """JSON-ready fields (no credentials: only the key's fingerprint)."""
        return {
            "user_id": self.user_id,
            "account": self.account,
            "exchange": self.exchange,
            "mode": self.mode,
            "live_opt_in": self.live_opt_in,
            "status": self.status,
            "disabled_reason": self.disabled_reason,
            "risk": self.risk.model_dump(),
            "telegram_chat_id": self.telegram_chat_id,
            "key_fingerprint": self.key_fingerprint,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class Credentials(BaseModel):
    """A user's decrypted exchange credentials; `str`/`repr` show '**********' for both values."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    exchange: str
    key_fingerprint: str
    api_key: SecretStr
    api_secret: SecretStr


@dataclass(frozen=True, slots=True)
class NewUser:
    """A user to add (`UserStore.add_many`); the repr leaves out the key and secret."""

    user_id: str
    account: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    exchange: str = "mexc"
    mode: str = "paper"
    live_opt_in: bool = False
    risk: RiskSettings = field(default_factory=RiskSettings)
    telegram_chat_id: int | None = None

    def checked(self) -> NewUser:
        """This user with edge whitespace trimmed, or a ConfigError naming the offending field."""
        uid = self.user_id
        if not isinstance(uid, str) or not USER_ID_PATTERN.fullmatch(uid):
            raise ConfigError(
                f"user id {uid!r} is not valid", "use 1-64 letters, digits and _ . @ : - (no spaces)"
            )
        account = self.account.strip() if isinstance(self.account, str) else ""
        if not account or len(account) > 200:
            raise ConfigError(f"user {uid!r}: account must be 1-200 characters", "give a display name")
        exchange = self.exchange.strip() if isinstance(self.exchange, str) else ""
        if not exchange:
            raise ConfigError(f"user {uid!r}: exchange is empty", "give a ccxt exchange id, e.g. mexc")
        check_exchange_id(uid, exchange)
        check_mode(uid, self.mode, self.live_opt_in)
        if not isinstance(self.risk, RiskSettings):
            raise ConfigError(f"user {uid!r}: risk is not RiskSettings", "build it with risk_settings()")
        chat = self.telegram_chat_id
        if chat is not None and (isinstance(chat, bool) or not isinstance(chat, int)):
            raise ConfigError(f"user {uid!r}: telegram_chat_id must be an integer", "e.g. 123456789")
        keyless = self.mode == "paper" and not _text(self.api_key) and not _text(self.api_secret)
        return replace(
            self,
            account=account,
            exchange=exchange,
            live_opt_in=bool(self.live_opt_in),
            # A paper user needs no key (the built-in paper broker); one key without its secret is a typo.
            api_key="" if keyless else checked_secret(uid, "api_key", self.api_key),
            api_secret="" if keyless else checked_secret(uid, "api_secret", self.api_secret),
        )


def check_mode(user_id: str, mode: str, live_opt_in: bool) -> None:
    """Refuse an unknown mode, and live trading without the user's explicit opt-in."""
    if mode not in MODES:
        raise ConfigError(f"user {user_id!r}: mode {mode!r} is not one of paper, live", "use paper or live")
    if mode == "live" and not live_opt_in:
        raise ConfigError(
            f"user {user_id!r}: mode live needs live_opt_in (real money is traded)",
            "confirm with --live-opt-in, or use --mode paper",
        )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def checked_secret(user_id: str, name: str, value: object) -> str:
    """`value` trimmed; the error names the field only, never the value."""
    # Keys pasted from a terminal or file often carry a newline; exchanges never use edge whitespace.
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ConfigError(f"user {user_id!r}: {name} is empty", f"give the exchange's {name}")
    # Keys travel in HTTP headers and signed query strings: printable ASCII without spaces, always.
    if not _PRINTABLE.fullmatch(text):
        raise ConfigError(f"user {user_id!r}: {name} has spaces or characters no exchange key has",
                          f"paste the exchange's {name} again, exactly as the exchange shows it")
    return text


_PRINTABLE = re.compile(r"[\x21-\x7e]+")


def check_exchange_id(user_id: str, exchange: str) -> None:
    """Refuse an exchange id ccxt does not know (the runtime could never build its client)."""
    import difflib

    import ccxt

    if exchange not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange, ccxt.exchanges, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "use a ccxt exchange id, e.g. mexc"
        raise ConfigError(f"user {user_id!r}: exchange {exchange!r} is not a ccxt exchange id", hint)


class Problem(NamedTuple):
    """A stored user that could not be loaded, and why (never containing a secret)."""

    user_id: str
    reason: str
