"""`xray exchange-sim`: run the MEXC emulator in the foreground."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, ValidationError

from xray_core.errors import ConfigError


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
    duplicate_ids: str = "dedupe",
) -> None:
    from xray_sim.exchange.config import ApiCredential, EmulatorConfig
    from xray_sim.exchange.server import run_forever

    if (api_key is None) != (api_secret is None):
        raise ConfigError("--api-key and --api-secret go together", "pass both or neither")
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
            duplicate_ids=duplicate_ids,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        given = "" if name == "credentials" else f" (got {first['input']!r})"  # never echo a secret
        raise ConfigError(
            f"--{name.replace('_', '-')}: {first['msg']}{given}", "see `xray exchange-sim --help`"
        ) from None
    run_forever(config)


def _parse_funds(items: list[str]) -> dict[str, str]:
    funds: dict[str, str] = {}
    for item in items:
        asset, _, amount = item.partition("=")
        try:
            if not asset or float(amount) < 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"--funds {item!r} is not ASSET=AMOUNT", "e.g. --funds USDT=10000") from None
        funds[asset.upper()] = amount
    return funds
