"""`xray users add|list|disable|enable|keygen`: the trading runtime's users from the command line.

`main.py` imports this module at start-up, so it imports only typer; the runtime (SQLAlchemy, the
vault, rich) is imported inside each command. The database is `XRAY_RUNTIME_DATABASE_URL`; only `add`
needs `XRAY_RUNTIME_FERNET_KEY`, so an operator can list, disable and enable users without the key.
Keys and secrets are never printed: `list` shows each key's fingerprint (sha256 prefix) instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from xray_runtime.users import UserStore

users_app = typer.Typer(
    help="Users of the trading runtime (API keys encrypted at rest): add, list, disable, enable, keygen.",
    no_args_is_help=True,
)

_SECRET_HELP = "prompted for (input hidden) when not given; on the command line it lands in shell history"


def _store(*, need_key: bool) -> UserStore:
    from xray_core.settings import load
    from xray_runtime.crypto import KeyVault
    from xray_runtime.db import connect
    from xray_runtime.settings import RuntimeSettings
    from xray_runtime.users import UserStore

    settings = load(RuntimeSettings)
    vault = KeyVault.from_settings(settings) if need_key else None
    return UserStore(connect(settings.database_url), vault)


def _say(text: str) -> None:
    from xray_cli.console import out

    # markup=False: ids, names and reasons are user text; "[...]" in them must print as typed.
    out.print(text, markup=False, highlight=False)


@users_app.command("add")
def add(
    user_id: Annotated[str, typer.Option("--id", help="Unique user id (letters, digits, _ . @ : -)")],
    api_key: Annotated[
        str | None, typer.Option("--api-key", help=f"Exchange API key; {_SECRET_HELP}")
    ] = None,
    api_secret: Annotated[
        str | None, typer.Option("--api-secret", help=f"Exchange API secret; {_SECRET_HELP}")
    ] = None,
    no_api_key: Annotated[
        bool, typer.Option("--no-api-key", help="A paper user without a key (the built-in paper broker)")
    ] = False,
    account: Annotated[str | None, typer.Option(help="Display name (default: the id)")] = None,
    exchange: Annotated[str, typer.Option(help="ccxt exchange id")] = "mexc",
    mode: Annotated[
        str, typer.Option(metavar="paper|live", help="paper: the emulator; live: real money")
    ] = "paper",
    live_opt_in: Annotated[
        bool, typer.Option("--live-opt-in", help="Confirm that this user trades real money (needed by live)")
    ] = False,
    telegram_chat_id: Annotated[int | None, typer.Option(help="Telegram chat for notifications")] = None,
    profile: Annotated[
        str | None, typer.Option(help="Risk profile: conservative, balanced or aggressive (default balanced)")
    ] = None,
    trade_percentage: Annotated[
        float | None, typer.Option(help="Share of equity per trade, 0 < x <= 1 (default 0.1)")
    ] = None,
    leverage: Annotated[
        float | None, typer.Option(help="Leverage allowed, 1..20 (default 1; spot trades at 1 regardless)")
    ] = None,
    margin_multiplier: Annotated[
        float | None, typer.Option(help="Margin kept above the requirement, >= 1 (default 1.5)")
    ] = None,
    max_position_usd: Annotated[
        float | None, typer.Option(help="Largest position in USD (default 1000)")
    ] = None,
    max_daily_loss: Annotated[
        float | None, typer.Option(help="Daily loss stop, fraction of equity 0..1 (default 0.05)")
    ] = None,
    max_drawdown: Annotated[
        float | None, typer.Option(help="Drawdown stop, fraction 0..1 (default 0.2)")
    ] = None,
) -> None:
    """Add a user; the API key and secret are stored encrypted (needs XRAY_RUNTIME_FERNET_KEY)."""
    from xray_core.errors import ConfigError
    from xray_runtime.users import risk_settings

    if no_api_key:
        if mode != "paper" or api_key is not None or api_secret is not None:
            raise ConfigError("--no-api-key is for a paper user without --api-key/--api-secret",
                              "drop --no-api-key, or the key options and --mode live")
        api_key = api_secret = ""
    else:  # prompted (hidden) when left out, so that the key stays out of the shell history
        api_key = api_key if api_key is not None else typer.prompt("API key", hide_input=True)
        api_secret = api_secret if api_secret is not None else typer.prompt("API secret", hide_input=True)
    given: dict[str, Any] = {
        "profile": profile, "trade_percentage": trade_percentage, "leverage": leverage,
        "margin_multiplier": margin_multiplier, "max_position_usd": max_position_usd,
        "max_daily_loss": max_daily_loss, "max_drawdown": max_drawdown,
    }  # fmt: skip
    # Only the options given override the defaults, so the defaults live in one place (RiskSettings).
    risk = risk_settings({name: value for name, value in given.items() if value is not None})
    user = _store(need_key=True).add(
        user_id,
        account if account is not None else user_id,
        api_key,
        api_secret,
        exchange=exchange,
        mode=mode,
        live_opt_in=live_opt_in,
        risk=risk,
        telegram_chat_id=telegram_chat_id,
    )
    _say(f"added user {user.user_id} ({user.exchange}, {user.mode}, key fingerprint {user.key_fingerprint})")


@users_app.command("list")
def list_users(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (a list of users)")] = False,
    status: Annotated[
        str | None, typer.Option(metavar="active|disabled", help="Only users with this status")
    ] = None,
) -> None:
    """Every user with mode, status (and why disabled), risk limits and key fingerprint; never keys."""
    import json

    from rich.table import Table

    from xray_cli.console import err, out

    users, problems = _store(need_key=False).scan(status)
    if json_output:
        print(json.dumps([user.public_dict() for user in users]))
    else:
        table = Table(title="users")
        for name in ("id", "account", "exchange", "mode", "status", "reason", "profile", "trade %"):
            table.add_column(name)
        for name in ("max position $", "telegram", "key"):
            table.add_column(name)
        for user in users:
            table.add_row(
                user.user_id, user.account, user.exchange, user.mode, user.status,
                user.disabled_reason or "", user.risk.profile, f"{user.risk.trade_percentage:.1%}",
                f"{user.risk.max_position_usd:,.0f}", str(user.telegram_chat_id or ""), user.key_fingerprint,
            )  # fmt: skip
        out.print(table, markup=False)
        if not users and not problems:
            err.print("no users yet: add one with `xray users add`")
    for problem in problems:
        err.print(f"user {problem.user_id} cannot be read: {problem.reason}", markup=False, highlight=False)


@users_app.command("disable")
def disable(
    user_id: Annotated[str, typer.Argument(metavar="ID", help="User id")],
    reason: Annotated[str, typer.Option(help="Why (shown by `xray users list`)")],
) -> None:
    """Stop trading for a user; the user and the reason stay in the store."""
    user = _store(need_key=False).disable(user_id, reason)
    _say(f"disabled user {user.user_id}: {user.disabled_reason}")


@users_app.command("enable")
def enable(user_id: Annotated[str, typer.Argument(metavar="ID", help="User id")]) -> None:
    """Let a disabled user trade again."""
    user = _store(need_key=False).enable(user_id)
    _say(f"enabled user {user.user_id} ({user.mode})")


@users_app.command("keygen")
def keygen() -> None:
    """Print a fresh Fernet key for XRAY_RUNTIME_FERNET_KEY (rotation: new,old comma-separated)."""
    from xray_runtime.crypto import generate_key

    # Bare print: `export XRAY_RUNTIME_FERNET_KEY=$(xray users keygen)` must get the key and nothing else.
    print(generate_key())
