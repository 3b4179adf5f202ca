"""The tables `xray demo` prints after each stage."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from rich.table import Table

from xray_cli.console import out, verdict_style


def print_market_data(settings: Any, failures: dict[str, str]) -> None:
    from xray_core.candles.store import CandleStore

    store = CandleStore(settings.store.duckdb_file)
    exchange, timeframe = settings.exchange.id, settings.ingest.timeframe
    verdicts = store.quality(exchange, timeframe)
    dropped = store.markets(exchange).filter(~pl.col("kept"))
    table = Table(title=f"X-Ray market data — {exchange} {timeframe}, embedded Dagster + DuckDB")
    for name in ("symbol", "bars", "verdict", "reason"):
        table.add_column(name, justify="right" if name == "bars" else "left")
    for row in verdicts.iter_rows(named=True):
        style = verdict_style(row["verdict"])
        table.add_row(row["symbol"], f"{row['bars']:,}", f"[{style}]{row['verdict']}[/]", row["reason"])
    for row in dropped.iter_rows(named=True):
        table.add_row(row["symbol"], "0", "[yellow]dropped[/]", row["reason"])
    out.print(table)
    good = verdicts.filter(pl.col("verdict") == "good").height
    out.print(
        f"{good} good, {verdicts.height - good} bad, {dropped.height} dropped from the universe; "
        f"{len(failures)} ingestion runs failed."
    )


def print_research(settings: Any) -> None:
    from xray_core.research.store import ResearchStore

    store = ResearchStore(settings.store.duckdb_file, settings.store.lake_dir)
    scope = {"exchange": settings.exchange.id, "timeframe": settings.ingest.timeframe}
    filtered = store.read("filtered_symbols", scope)
    params = store.read("symbol_params", scope)
    optimised = {r["symbol"]: f"{r['strategy']} {_short(r['params'])}" for r in params.iter_rows(named=True)}
    kept = filtered.filter(pl.col("kept"))
    research = settings.research
    table = Table(
        title=f"filtered symbols — default-parameter backtests, fee {research.fee:.2%}, "
        f"slippage {research.slippage:.2%}"
    )
    for name in ("symbol", "strategy", "return", "Sharpe", "max DD", "trades", "optimised parameters"):
        table.add_column(
            name, justify="left" if name in ("symbol", "strategy", "optimised parameters") else "right"
        )
    for row in kept.iter_rows(named=True):
        table.add_row(
            row["symbol"],
            row["best_strategy"],
            f"{row['total_return']:+.1%}",
            f"{row['sharpe']:.2f}",
            f"{row['max_drawdown']:.1%}",
            str(row["n_trades"]),
            optimised.get(row["symbol"], "-"),
        )
    out.print(table)
    dropped = Table(title="dropped symbols")
    dropped.add_column("symbol")
    dropped.add_column("reason")
    for row in filtered.filter(~pl.col("kept")).iter_rows(named=True):
        dropped.add_row(row["symbol"], row["reason"])
    out.print(dropped)
    _print_groups(store, scope)
    out.print(
        f"{kept.height} symbols kept, {filtered.height - kept.height} dropped. "
        "Explore the assets, checks and plots with `make ui`."
    )


def _print_groups(store: Any, scope: dict[str, str]) -> None:
    groups = store.read("strategy_params", scope)
    if not groups.height:
        return
    table = Table(title="optimised per cluster (NSGA-II, walk-forward, out-of-sample)")
    for name in ("group", "symbols", "strategy", "parameters", "OOS return", "OOS DD", "trials"):
        table.add_column(name)
    for row in groups.iter_rows(named=True):
        oos_return = f"{row['oos_return']:+.1%}" if row["oos_return"] is not None else "-"
        oos_dd = f"{row['oos_drawdown']:.1%}" if row["oos_drawdown"] is not None else "-"
        table.add_row(
            row["group"],
            row["symbols"],
            row["strategy"],
            _short(row["params"]),
            oos_return,
            oos_dd,
            str(row["trials"]),
        )
    out.print(table)


def _short(params_json: str) -> str:
    """Parameters with floats rounded for reading: {"period": 81, "lower": 47.02}."""
    values = json.loads(params_json)
    return (
        ", ".join(f"{k}={round(v, 2) if isinstance(v, float) else v}" for k, v in values.items())
        or "defaults"
    )
