"""The tables `xray demo` prints after each stage."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
from rich import box
from rich.table import Table

from xray_cli.console import out, verdict_style

# The trading tables: no vertical rules, so they stay readable in an 80-column terminal or log.
COMPACT: dict[str, Any] = {"box": box.SIMPLE_HEAD, "show_edge": False, "collapse_padding": True}


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
    from xray_core.research.store import LakeTable, ResearchStore

    store = ResearchStore(settings.store.duckdb_file, settings.store.lake_dir)
    scope = {"exchange": settings.exchange.id, "timeframe": settings.ingest.timeframe}
    filtered = store.read(LakeTable.FILTERED_SYMBOLS, scope)
    params = store.read(LakeTable.SYMBOL_PARAMS, scope)
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
    from xray_core.research.store import LakeTable

    groups = store.read(LakeTable.STRATEGY_PARAMS, scope)
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


def print_bundle(bundle_dir: Any) -> None:
    """The promoted bundle's strategy per symbol: how many trade on `model` and how many on rule
    strategies, and why (the rule's and the model's Sharpe on the champion's walk-forward windows)."""
    from xray_core.bundle import CURRENT, parse, read

    path = bundle_dir / CURRENT
    if not path.exists():
        out.print("no bundle was published")
        return
    bundle = parse(read(path))
    table = Table(title=f"bundle {bundle.version} — strategy per symbol (rule vs champion, same windows "
                  "and costs)", **COMPACT)
    for name in ("symbol", "trades on", "rule Sharpe", "model Sharpe", "why"):
        table.add_column(name, justify="right" if "Sharpe" in name else "left")
    rules: dict[str, int] = {}
    on_model = 0
    for entry in bundle.symbols:
        record = bundle.selection.get(entry.symbol)
        why = record.reason if record else "no selection record"
        extra = record.model_extra if record and record.model_extra else {}
        if entry.strategy == "model":
            on_model += 1
            model = bundle.models.get(entry.model or "")
            label = f"model {entry.model} v{model.version}" if model else "model"
        else:
            rules[entry.strategy] = rules.get(entry.strategy, 0) + 1
            label = entry.strategy
        scores = (_sharpe(extra.get("rule_sharpe")), _sharpe(extra.get("model_sharpe")))
        table.add_row(entry.symbol, label, *scores, why)
    out.print(table)
    per_rule = ", ".join(f"{name} {n}" for name, n in sorted(rules.items()))
    counts = f" ({per_rule})" if per_rule else ""
    out.print(f"{on_model} of {len(bundle.symbols)} symbols trade on a model, "
              f"{len(bundle.symbols) - on_model} on rule strategies{counts}.")


def _sharpe(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else "-"


def print_trading(result: Any) -> None:
    """The runtime's paper trading after the pipeline (`xray_cli.demo_trading.TradingResult`)."""
    out.print(
        f"trading runtime — bundle {result.bundle_version}, {len(result.users)} paper users, "
        f"{result.bars} bars of {result.timeframe} on the emulator's clock"
    )
    groups: dict[str, list[str]] = {}
    for symbol, strategy in result.strategies.items():
        groups.setdefault(strategy, []).append(symbol)
    for strategy, symbols in groups.items():
        name, _, params = strategy.partition(" ")
        out.print(f"  {name} {_short(params or '{}')}: {', '.join(symbols)}")
    table = Table(title="paper users — the runtime's journal and book, valued at the last close", **COMPACT)
    columns = ("user", "profile", "start", "buy/sell", "fills", "fees", "final", "PnL", "PnL %")
    for name in columns:
        table.add_column(name, justify="left" if name in ("user", "profile") else "right")
    for user in result.users:
        style = "green" if user.pnl > 0 else "red" if user.pnl < 0 else ""
        table.add_row(
            user.user_id, user.profile, f"{user.start_equity:,.0f}", f"{user.buys}/{user.sells}",
            str(user.fills), f"{user.fees_quote:,.2f}", f"{user.final_equity:,.2f}",
            _styled(f"{user.pnl:+,.2f}", style), _styled(f"{user.pnl_pct:+.2%}", style),
        )
    out.print(table)
    if result.orders:
        table, legend = _orders_table(result.orders)
        out.print(table)
        for line in legend:
            out.print(f"  {line}")
    else:
        out.print(f"[yellow]No orders:[/] {_why_no_orders(result)}")
    for user_id, reason in result.problems.items():
        out.print(f"[red]{user_id} did not trade:[/] {reason}")
    if result.skipped:
        skipped = ", ".join(f"{s} ({why})" for s, why in result.skipped.items())
        out.print(f"not decided on the last bar: {skipped}")
    steps = sorted(result.step_s)
    median = steps[len(steps) // 2] if steps else 0.0
    out.print(
        f"{result.ticks} bars decided, {result.intents} order intents, {result.total_orders} orders, "
        f"{result.total_fills} fills; start-up {result.setup_s:.1f} s, trading {result.trading_s:.1f} s "
        f"({median * 1000:.0f} ms a bar, median)"
    )
    if result.shadow:
        out.print(_shadow_table(result.shadow))
    audit = result.audit
    line = (
        f"{audit.users} users, {audit.duplicate_orders} duplicates, {audit.lost_fills} lost fills, "
        f"{audit.state_mismatches} mismatches"
    )
    if audit.clean:
        out.print(f"[green]exchange and journal agree:[/] {line}")
    else:
        out.print(f"[red]exchange and journal DISAGREE:[/] {line}")
        for detail in audit.details[:10]:
            out.print(f"  {detail}")


def _shadow_table(books: list[dict[str, Any]]) -> Table:
    """Each shadow book: the model evaluated on the same bars, recorded, never ordered."""
    table = Table(title="shadow books — models evaluated on the same bars, never ordered", **COMPACT)
    for name in ("model", "symbol", "bars", "bars long", "net return"):
        table.add_column(name, justify="left" if name in ("model", "symbol") else "right")
    for book in books:
        table.add_row(f"{book['model']}/{book['version']}", book["symbol"], str(book["bars"]),
                      str(book["bars_long"]), f"{book['net_return']:+.2%}")
    return table


def _why_no_orders(result: Any) -> str:
    if not result.signals:
        return f"in {result.ticks} bars no promoted symbol could be decided, so nothing was traded."
    return (
        f"{result.signals} symbol-bars were decided in {result.ticks} bars and none was an entry (a "
        "strategy enters on the bar its target turns on), so nothing was traded."
    )


def _orders_table(orders: list[Any]) -> tuple[Table, list[str]]:
    """The orders, each naming its lineage (#n), and the lineages they were decided from."""
    from datetime import UTC, datetime

    table = Table(title="orders — from the runtime's journal", **COMPACT)
    for name in ("bar (UTC)", "user", "symbol", "side", "amount", "avg price", "status", "lineage"):
        table.add_column(name, justify="right" if name in ("amount", "avg price") else "left")
    lineages: dict[tuple[str, ...], int] = {}
    for order in orders:
        when = datetime.fromtimestamp(order.bar_ms / 1000, UTC).strftime("%m-%d %H:%M")
        lineage = order.lineage
        key = (lineage.strategy, lineage.params, lineage.bundle_version, lineage.model_version or "")
        number = lineages.setdefault(key, len(lineages) + 1)
        side = order.side.value
        table.add_row(
            when, order.user_id, order.symbol, _styled(side, "green" if side == "buy" else "red"),
            f"{order.amount:.6g}", f"{order.average:.6g}" if order.average else "-",
            order.status.value + (f" ({order.reason[:40]})" if order.reason else ""), f"#{number}",
        )
    legend = [
        f"#{number} {strategy} {_short(params)}, bundle {bundle}" + (f", model {model}" if model else "")
        for (strategy, params, bundle, model), number in lineages.items()
    ]
    return table, legend


def _styled(text: str, style: str) -> str:
    return f"[{style}]{text}[/]" if style else text
