"""`xray` commands. Each body is a one-line dispatch into a module imported on use."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from xray_cli.settings_cmd import settings_app  # typer only, like users_app
from xray_cli.users_cmd import users_app  # typer only: its commands import the runtime on use

app = typer.Typer(
    name="xray",
    help="X-Ray: a self-learning market X-ray for crypto trading (Dagster + MLflow).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("exchange-sim")
def exchange_sim(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one)")] = 8765,
    data: Annotated[
        Path | None, typer.Option(help="Replay BASE_QUOTE-TF.parquet candles from this directory")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market and of fault injection")] = 7,
    api_key: Annotated[str | None, typer.Option(help="Register this API key")] = None,
    api_secret: Annotated[str | None, typer.Option(help="Secret of --api-key")] = None,
    speed: Annotated[float, typer.Option(help="Market clock speed (60: a minute per second)")] = 1.0,
    faults: Annotated[
        str | None, typer.Option(help="Fault-injection spec, e.g. 'latency:p=0.1:ms=200'")
    ] = None,
    history_days: Annotated[int, typer.Option(help="Days of history behind the clock")] = 120,
    extra_listings: Annotated[int, typer.Option(help="Long-tail USDT pairs beyond the default 25")] = 0,
    start_ms: Annotated[int | None, typer.Option(help="Market clock start in ms (default: now)")] = None,
    funds: Annotated[list[str] | None, typer.Option(help="Starting balance per key, e.g. USDT=10000")] = None,
    admin_token: Annotated[str | None, typer.Option(
        help="Token its admin API (/_emulator/...) needs in X-Emulator-Token; unset: loopback clients only",
        envvar="XRAY_SIM_ADMIN_TOKEN", show_envvar=False)] = None,
    duplicate_ids: Annotated[
        str, typer.Option(metavar="dedupe|reject|dedupe-open", help="What a repeated newClientOrderId does")
    ] = "dedupe",
) -> None:
    """Run the loopback MEXC spot v3 emulator that stock ccxt trades against."""
    from xray_cli.sim import run_sim

    run_sim(
        host=host,
        port=port,
        data=data,
        seed=seed,
        api_key=api_key,
        api_secret=api_secret,
        speed=speed,
        faults=faults,
        history_days=history_days,
        extra_listings=extra_listings,
        start_ms=start_ms,
        funds=funds or [],
        admin_token=admin_token,
        duplicate_ids=duplicate_ids,
    )


@app.command()
def ingest(
    symbols: Annotated[
        list[str] | None,
        typer.Option(
            "--symbols",
            "-s",
            help="Symbols to ingest (repeat or comma-separate); default: the filtered universe",
        ),
    ] = None,
    days: Annotated[
        int | None, typer.Option(help="History to backfill (default XRAY_INGEST_HISTORY_DAYS)")
    ] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar timeframe (default XRAY_INGEST_TIMEFRAME)")
    ] = None,
) -> None:
    """Fetch new candles into DuckDB and assess their quality, one symbol at a time."""
    from xray_cli.ingest import run_ingest

    run_ingest(symbols=symbols or [], days=days, timeframe=timeframe)


@app.command()
def candles(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. BTC/USDT")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file to write")],
    timeframe: Annotated[str | None, typer.Option(help="Timeframe (default XRAY_INGEST_TIMEFRAME)")] = None,
) -> None:
    """Export stored candles to Parquet (timestamp, open, high, low, close, volume)."""
    from xray_cli.export import export_candles

    export_candles(symbol=symbol, out=out, timeframe=timeframe)


@app.command()
def status(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Settings in use, stored series with their quality verdicts, and whether the exchange answers."""
    from xray_cli.status import show_status

    show_status(as_json=json_output)


@app.command()
def demo(
    symbols: Annotated[int | None, typer.Option(help="Limit the demo to this many markets")] = None,
) -> None:
    """Start the emulator and materialize the data assets on the embedded Dagster instance."""
    from xray_cli.demo import run_demo

    run_demo(max_symbols=symbols)


_CANDLES_HELP = "Candle Parquet file (timestamp, open, high, low, close, volume), e.g. BTC_USDT-1h.parquet"
_Fee = Annotated[str, typer.Option(metavar="FLOAT", help="Fee per fill as a fraction (0.001 = 0.1%)")]
_Slippage = Annotated[str, typer.Option(metavar="FLOAT", help="Slippage per fill as a fraction of the price")]
_Cash = Annotated[str, typer.Option(metavar="FLOAT", help="Starting equity in quote currency")]
_Mode = Annotated[
    str, typer.Option(metavar="long_only|long_short", help="long_short trades -1 targets; long_only: flat")
]
_Json = Annotated[bool, typer.Option("--json", help="Print JSON on stdout (NaN/inf metrics as null)")]


@app.command()
def indicators(
    candles: Annotated[Path, typer.Option(help=_CANDLES_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file to write (atomically)")],
    json_output: _Json = False,
) -> None:
    """Write the candles plus every indicator column (SMA, EMA, RSI, MACD, Bollinger, ATR, ...)."""
    from xray_cli.indicators_cmd import write_indicators

    write_indicators(candles=candles, out=out, as_json=json_output)


@app.command()
def backtest(
    candles: Annotated[Path, typer.Option(help=_CANDLES_HELP)],
    strategy: Annotated[str, typer.Option(help="sma_cross, rsi_reversion, bb_breakout or macd_trend")],
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter NAME=VALUE (repeat)")] = None,
    fee: _Fee = "0.001",
    slippage: _Slippage = "0",
    cash: _Cash = "10000",
    mode: _Mode = "long_only",
    json_output: _Json = False,
) -> None:
    """Backtest one strategy on one candle file: metrics and trades (fills at the next bar's open)."""
    from xray_cli.backtest_cmd import run_backtest_command

    run_backtest_command(
        candles=candles,
        strategy=strategy,
        params=param or [],
        fee=fee,
        slippage=slippage,
        cash=cash,
        mode=mode,
        as_json=json_output,
    )


@app.command("backtest-grid")
def backtest_grid(
    candles: Annotated[Path, typer.Option(help="A candle Parquet file or a folder of them (*.parquet)")],
    strategy: Annotated[str, typer.Option(help="sma_cross, rsi_reversion, bb_breakout or macd_trend")],
    grid: Annotated[
        list[str] | None, typer.Option(help="Parameter range NAME=START:STOP:STEP, STOP inclusive (repeat)")
    ] = None,
    fee: _Fee = "0.001",
    slippage: _Slippage = "0",
    cash: _Cash = "10000",
    mode: _Mode = "long_only",
    json_output: _Json = False,
) -> None:
    """Backtest every parameter combination on every file; exit 1 if some files failed, 2 if all did."""
    from xray_cli.grid_cmd import run_grid_command

    run_grid_command(
        candles=candles,
        strategy=strategy,
        grid=grid or [],
        fee=fee,
        slippage=slippage,
        cash=cash,
        mode=mode,
        as_json=json_output,
    )


models_app = typer.Typer(help="The model registry: list, promote, roll back.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(users_app, name="users")
app.add_typer(settings_app, name="settings")


@models_app.command("list")
def models_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """Every registered version: name, flavor, version, aliases and metrics (oos_sharpe, ...)."""
    from xray_cli.models_cmd import list_models

    list_models(as_json=json_output)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="gbm, lstm or rl (or xray-gbm, ...)")],
    version: Annotated[str | None, typer.Option(help="Version to promote (default: the challenger)")] = None,
    force: Annotated[bool, typer.Option(help="Promote even if the gate refuses")] = False,
) -> None:
    """Run the promotion gate on the challenger and make it champion if it earns it (exit 1 if not)."""
    from xray_cli.models_cmd import promote

    promote(name=name, version=version, force=force)


@models_app.command("rollback")
def models_rollback(name: Annotated[str, typer.Argument(help="gbm, lstm or rl (or xray-gbm, ...)")]) -> None:
    """Make the previous champion the champion again."""
    from xray_cli.models_cmd import rollback

    rollback(name=name)


@app.command()
def train(
    model: Annotated[str | None, typer.Option(help="gbm, lstm or rl (default: all three)")] = None,
) -> None:
    """Train, evaluate out of sample, register in MLflow and gate the models on the stored candles."""
    from xray_cli.models_cmd import train as run_training

    run_training(model=model)


@app.command()
def runtime(
    model_kind: Annotated[str, typer.Option(help="Champion model for symbols that trade the model")] = "gbm",
) -> None:
    """The trading service: trades the promoted bundle for every active user (XRAY_RUNTIME_* settings)."""
    from xray_runtime.app import main as run_service

    code = run_service(model_kind)
    if code:
        raise typer.Exit(code)


@app.command()
def bot() -> None:
    """The two-way Telegram bot (/start CODE, /status, /pause, ...): XRAY_TELEGRAM_* and the runtime's
    database; one process per bot token."""
    from xray_runtime.bot.app import main as run_bot

    code = run_bot()
    if code:
        raise typer.Exit(code)


@app.command()
def web(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    database_url: Annotated[
        str | None,
        typer.Option(help="The runtime's users/journal database (default XRAY_RUNTIME_DATABASE_URL)"),
    ] = None,
) -> None:
    """The web dashboard and REST API (OpenAPI at /openapi.json); sign in with `xray users token`."""
    from xray_web.app import serve

    serve(host, port, database_url)


@app.command()
def loadtest(
    users: Annotated[int, typer.Option(help="Paper users")] = 100,
    symbols: Annotated[int, typer.Option(help="Promoted symbols")] = 10,
    ticks: Annotated[int, typer.Option(help="Bars to trade")] = 5,
    faults: Annotated[str | None, typer.Option(help="Emulator fault spec during the ticks")] = None,
    database_url: Annotated[str | None, typer.Option(help="Users/journal database (default: SQLite)")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis for limiter, order state, sharding")] = None,
    processes: Annotated[int, typer.Option(help="Runtime processes sharing database and Redis")] = 1,
    chaos: Annotated[bool, typer.Option("--chaos", help="Kill processes, restart Redis, all faults")] = False,
    duplicate_ids: Annotated[
        str, typer.Option(metavar="dedupe|reject|dedupe-open", help="The emulator's answer to a repeated id")
    ] = "dedupe",
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Run the runtime with N paper users against the emulator; report latency, orders and the audit."""
    from xray_cli.loadtest_cmd import run_loadtest_command

    run_loadtest_command(users=users, symbols=symbols, ticks=ticks, faults=faults,
                         database_url=database_url, redis_url=redis_url, duplicate_ids=duplicate_ids,
                         processes=processes, chaos=chaos, as_json=json_output)


def run(args: list[str] | None = None) -> None:
    """Console entry point: user errors print one line (what is wrong, what to do) and exit non-zero.

    Click's own usage errors (an option's value of the wrong type, a missing option) are printed the
    same way, as one line naming the command and the option, instead of its usage box."""
    from xray_core.errors import XrayError

    try:
        code = app(args=args, standalone_mode=False)
    except XrayError as exc:
        print(f"xray: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors and the like
        _usage_error(exc)
    except (KeyboardInterrupt, typer.Abort):
        print("xray: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: typer.TyperException) -> None:
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":  # `xray` or `xray users` alone: the help, as before
        from typer import rich_utils

        rich_utils.rich_format_error(exc)  # type: ignore[arg-type]
        sys.exit(2)
    path = ctx.command_path.split() if ctx is not None else ["xray"]
    command = " ".join(path[1:])  # without the program's name
    message = " ".join(exc.format_message().split())  # one line, whatever click wrapped
    where, help_of = (f"{command}: ", f"{command} ") if command else ("", "")
    print(f"xray: error: {where}{message} — see 'xray {help_of}--help'", file=sys.stderr)
    sys.exit(getattr(exc, "exit_code", 2) or 2)


if __name__ == "__main__":
    run()
