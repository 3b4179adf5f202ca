"""The emulator's frozen configuration (built by `xray exchange-sim` options or by tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# What the exchange does with a newClientOrderId it already has (venues differ):
#   dedupe       return the order it already has, whatever the new request says (MEXC's behaviour)
#   reject       refuse the request (HTTP 400, {"code": -2010, "msg": "Duplicate order sent."})
#   dedupe-open  return the order only while it is open; once it closed, place a new one
DuplicateIds = Literal["dedupe", "reject", "dedupe-open"]
DUPLICATE_IDS: tuple[str, ...] = ("dedupe", "reject", "dedupe-open")


class ApiCredential(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    secret: SecretStr


class EmulatorConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535, description="0 picks a free port")
    seed: int = 7
    speed: float = Field(1.0, gt=0, description="Market clock speed; 60 makes a minute pass each second")
    start_ms: int | None = Field(None, description="Market clock start (ms); default: now")
    history_days: int = Field(120, ge=1, description="Days of history behind the clock start")
    extra_listings: int = Field(0, ge=0, le=80, description="Healthy long-tail pairs beyond the default 25")
    data_dir: Path | None = Field(None, description="Replay BASE_QUOTE-TF.parquet files instead of synthesis")
    credentials: tuple[ApiCredential, ...] = ()
    starting_funds: dict[str, str] = Field(
        default_factory=lambda: {"USDT": "10000"}, description="Balances each new API key starts with"
    )
    faults: str | None = Field(None, description="Fault-injection spec (see xray_sim.exchange.faults)")
    weight_limit: int = Field(500, ge=1, description="Request weight allowed per IP and per key per window")
    weight_window_s: float = Field(10.0, gt=0)
    recv_window_max_ms: int = 60_000
    admin_token: SecretStr | None = Field(
        None, description="Token the admin API (/_emulator/...) requires; unset: loopback clients only"
    )
    duplicate_ids: DuplicateIds = Field("dedupe", description="What a repeated newClientOrderId does")
