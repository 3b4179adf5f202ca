"""`xray exchange-sim`: run the MEXC emulator in the foreground."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr, ValidationError

from xray_core.errors import ConfigError

_TOKEN = re.compile(r"[\x21-\x7e]{16,256}")


def run_sim(
    *,
    host: str,
    port: int,
    data: Path | None,
    seed: int,
    api_key: str | None,
    api_secret: str | None,
    speed: float,
    faults: str | None,
    history_days: int,
    extra_listings: int = 0,
    start_ms: int | None = None,
    funds: list[str],
    admin_token: str | None = None,
    duplicate_ids: str = "dedupe",
) -> None:
    from xray_sim.exchange.config import ApiCredential, EmulatorConfig
    from xray_sim.exchange.server import run_forever

    if (api_key is None) != (api_secret is None):
        raise ConfigError("--api-key and --api-secret go together", "pass both or neither")
    if admin_token is not None and not _TOKEN.fullmatch(admin_token):
        raise ConfigError("--admin-token must be 16-256 printable characters without spaces",
                          "e.g. --admin-token $(openssl rand -hex 24)")
    credentials = (
        (ApiCredential(key=api_key, secret=SecretStr(api_secret)),) if api_key and api_secret else ()
    )
    try:
        config = EmulatorConfig(
            host=host,
            port=port,
            data_dir=data,
            seed=seed,
            speed=speed,
            faults=faults,
            history_days=history_days,
            extra_listings=extra_listings,
            start_ms=start_ms,
            credentials=credentials,
            starting_funds=_parse_funds(funds) if funds else {"USDT": "10000"},
            admin_token=SecretStr(admin_token) if admin_token else None,
            duplicate_ids=duplicate_ids,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        given = "" if name == "credentials" else f" (got {first['input']!r})"  # never echo a secret
        raise ConfigError(
            f"--{name.replace('_', '-')}: {first['msg']}{given}", "see `xray exchange-sim --help`"
        ) from None
    try:
        run_forever(config)
    except OSError as exc:  # the interface does not exist, the port is taken or privileged
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                          "pick another --host (an address of this machine) or --port") from None


def _parse_funds(items: list[str]) -> dict[str, str]:
    from xray_sim.exchange.decimals import parse_decimal

    funds: dict[str, str] = {}
    for item in items:
        asset, _, amount = item.partition("=")
        value = parse_decimal(amount.strip())  # finite and within range: 9E999999 is no balance
        if not asset or value is None or value < 0:
            raise ConfigError(f"--funds {item!r} is not ASSET=AMOUNT", "e.g. --funds USDT=10000")
        funds[asset.upper()] = amount
    return funds
