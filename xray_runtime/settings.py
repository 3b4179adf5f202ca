"""The trading runtime's typed settings (`XRAY_RUNTIME_*`, `XRAY_TELEGRAM_*`).

Embedded default (what `make demo` uses): users and the order journal in SQLite under `$XRAY_HOME`,
rate limits and live order state in process. Production: `XRAY_RUNTIME_DATABASE_URL` on Postgres and
`XRAY_RUNTIME_REDIS_URL` on Redis (or RedisCluster with `XRAY_RUNTIME_REDIS_CLUSTER=1`), which several
runtime processes share. Secrets are `SecretStr`: they never print, and only the modules that use
them unwrap them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_COMMON = SettingsConfigDict(frozen=True, extra="ignore", env_file=".env", env_file_encoding="utf-8")


def _xray_home() -> Path:
    return Path(os.environ.get("XRAY_HOME", ".xray"))


class RuntimeSettings(BaseSettings):
    """Where the runtime keeps state, how it reaches the exchange, and its global limits."""

    model_config = SettingsConfigDict(env_prefix="XRAY_RUNTIME_", **_COMMON)

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{(_xray_home() / 'runtime.db').resolve()}",
        description="SQLAlchemy URL of users and the order journal, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/xray",
        json_schema_extra={"env_default": "sqlite:///$XRAY_HOME/runtime.db (absolute)"},
    )
    redis_url: str | None = Field(
        None, description="Redis for shared rate limits, order state and sharding; unset: in process"
    )
    redis_cluster: bool = Field(False, description="Treat redis_url as a RedisCluster entry node")
    redis_failover_s: float = Field(
        20.0, gt=0, description="RedisCluster: how long a command keeps retrying through a failover "
        "before its caller sees the error; above the cluster's cluster-node-timeout plus a few seconds",
    )
    redis_prefix: str = Field("xray", description="Prefix of every Redis key this runtime writes")
    fernet_key: SecretStr | None = Field(
        None, description="Fernet key encrypting users' API keys at rest (generate: `xray users keygen`)"
    )
    bundle_dir: Path = Field(
        default_factory=lambda: _xray_home() / "bundles",
        description="Where the promoted bundle lives",
        json_schema_extra={"env_default": "$XRAY_HOME/bundles"},
    )
    bundle_url: str | None = Field(
        None, description="Shared bundle store the pipelines publish to, e.g. "
        "postgresql+psycopg://user@db/xray?table=xray_bundles or file:///dir; unset: bundle_dir",
    )
    paper_url: str | None = Field(
        None, description="A sandbox for paper users: loopback (the emulator) or the venue's listed testnet; "
        "unset: the built-in paper broker. Never a live API host (refused)"
    )
    live_url: str | None = Field(
        None, description="The live venue's API URL (e.g. https://api.mexc.com); unset: no live trading"
    )
    paper_funds: dict[str, float] = Field(
        default_factory=lambda: {"USDT": 10_000.0},
        description="Virtual balances each paper user starts with on the built-in broker (JSON)",
        json_schema_extra={"env_default": '{"USDT": 10000}'},
    )
    paper_fill: Literal["open", "ticker"] = Field(
        "open", description="Paper fills at the open of the 1m bar the order arrives in, or at the ticker's "
        "ask (buys) / bid (sells)"
    )
    paper_slippage_bps: float = Field(
        5.0, ge=0, le=1000, description="Paper fills' slippage against the trader, basis points of the price"
    )
    exchange_id: str = Field("mexc", description="ccxt exchange id")
    poll_s: float = Field(5.0, gt=0, description="How often the service looks for a new bar and a new bundle")
    stale_after_bars: float = Field(
        2.0, gt=0, description="No trading when the newest closed bar is older than this many bars"
    )
    users_refresh_s: float = Field(30.0, gt=0, description="How often the user table is re-read")
    reconcile_every_s: float = Field(
        300.0, gt=0, description="Periodic reconciliation against the exchange (in the background)"
    )
    markets_refresh_s: float = Field(
        3600.0, gt=0, description="How often listings and precisions are read again (new listings, changes)"
    )
    max_order_concurrency: int = Field(64, ge=1, description="Orders in flight at once per process")
    redis_max_connections: int = Field(
        128, ge=1, le=10_000, description="Redis connections per process; a command waits for a free one"
    )
    max_exchange_clients: int = Field(
        20_000, ge=1, description="ccxt clients (one per API key) kept per process; about 10 KB each. Keep "
        "it above the users of one process: an evicted key's client is rebuilt on its next order"
    )
    clock_skew_ms: int = Field(
        1_000, ge=0, le=60_000, description="How far the exchange's clock may lag ours: an order whose send "
        "failed ambiguously is sent again only after its signed time + recvWindow + this"
    )
    global_max_daily_loss: float = Field(
        0.2, gt=0, le=1, description="Kill switch: all users' combined loss today, share of start equity"
    )
    weight_limit_ip: int | None = Field(
        None, ge=1, description="Request weight per IP per window; unset: the venue's (MEXC: 500 per 10 s)"
    )
    weight_limit_key: int | None = Field(
        None, ge=1, description="Request weight per API key per window; unset: the venue's (MEXC: 500)"
    )
    weight_window_s: float | None = Field(None, gt=0, description="Rate-limit window; unset: the venue's")
    egress_ip: str | None = Field(
        None, description="This machine's address as the exchange sees it (the per-IP rate-limit scope); "
        "set the shared public address when several hosts leave through one NAT; unset: the local "
        "address of the route to the exchange",
    )
    process_id: str | None = Field(None, description="Name in the shard ring (default: host:pid)")
    lease_s: float = Field(10.0, gt=0, description="Missing heartbeats this long, a process loses its users")
    user_lock_s: float = Field(
        30.0, gt=0, description="A user's lock lapses this long after its holder last renewed it"
    )
    loop_stall_s: float = Field(
        300.0, gt=0, description="An event loop blocked this long stops the heartbeat: the others take over"
    )
    http_host: str = Field("127.0.0.1", description="/health and /metrics host")
    http_port: int = Field(9108, ge=0, le=65535, description="/health and /metrics port; 0 picks a free one")
    log_format: Literal["json", "console"] = Field("json", description="Structured log lines")

    @field_validator("paper_url", "live_url", "redis_url", "egress_ip")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip().rstrip("/") if value and value.strip() else None

    @field_validator("paper_funds")
    @classmethod
    def _funds(cls, value: dict[str, float]) -> dict[str, float]:
        if any(not name.strip() or not math.isfinite(amount) or amount < 0 for name, amount in value.items()):
            raise ValueError("every asset needs a name and a finite amount >= 0, e.g. {\"USDT\": 10000}")
        return {asset.strip().upper(): float(amount) for asset, amount in value.items()}


class TelegramSettings(BaseSettings):
    """The Telegram Bot API: a token enables notifications; without one they are only logged."""

    model_config = SettingsConfigDict(env_prefix="XRAY_TELEGRAM_", **_COMMON)

    bot_token: SecretStr | None = Field(None, description="Bot token from @BotFather")
    api_url: str = Field("https://api.telegram.org", description="Bot API base URL (a fake in tests)")
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout per Bot API request")
    max_retries: int = Field(
        3, ge=0, le=10, description="Retries on 429 (after retry_after), 5xx and network errors"
    )
    link_code_ttl_s: float = Field(
        900.0, gt=0, description="How long a code from `xray users link-code` links a chat (/start CODE)"
    )
