"""`xray backtest --candles FILE --strategy NAME [--param k=v ...]`: one strategy on one candle file.

The strategy's target positions (`Strategy.positions`) run through the generic engine
(`xray_core.backtest.run_backtest`, fills at the next open). `--json` prints one object:

    {"strategy", "params": {...}, "symbol", "timeframe", "candles", "bars", "start", "end",
     "mode", "fee", "slippage", "cash",
     "final_equity", "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "calmar",
     "win_rate", "profit_factor", "exposure", "n_trades",
     "trades": [{"entry_time", "exit_time", "side", "entry_price", "exit_price", "size", "pnl",
                 "return", "exit_reason"}, ...]}

Metrics are defined in `xray_core.backtest.metrics`; NaN/±inf ones are null; times ISO-8601 UTC.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from xray_cli.console import print_json
from xray_cli.research import (
    METRIC_KINDS,
    about,
    backtest_config,
    fmt,
    iso,
    parse_params,
    read_candles,
    symbol_of,
)


def run_backtest_command(
    *,
    candles: Path,
    strategy: str,
    params: list[str],
    fee: str,
    slippage: str,
    cash: str,
    mode: str,
    as_json: bool,
) -> None:
    from xray_core.backtest import Prices, run_backtest
    from xray_core.candles.bars import Bars
    from xray_core.strategies import Mode, get_strategy

    config = backtest_config(fee, slippage, cash, mode)
    chosen = get_strategy(strategy)
    values = chosen.params(parse_params(params))
    frame = read_candles(candles)
    prices = Prices.from_frame(frame, str(candles))
    with about(candles):
        positions = chosen.positions(Bars.from_frame(frame), values, Mode(config.mode))
        result = run_backtest(
            prices.open,
            prices.high,
            prices.low,
            prices.close,
            prices.timestamps_ms,
            positions,
            config,
            with_trades=True,
        )
    symbol, timeframe = symbol_of(candles)
    report: dict[str, Any] = {
        "strategy": chosen.name,
        "params": values.model_dump(),
        "symbol": symbol,
        "timeframe": timeframe,
        "candles": str(candles),
        "bars": len(prices),
        "start": iso(int(prices.timestamps_ms[0])),
        "end": iso(int(prices.timestamps_ms[-1])),
        "mode": config.mode,
        "fee": config.fee,
        "slippage": config.slippage,
        "cash": config.cash,
        **dataclasses.asdict(result.metrics),
    }
    trades = result.trades
    assert trades is not None
    stamped = trades.with_columns(
        trades[name].dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").str.replace(r"\.000Z$", "Z")
        for name in ("entry_time", "exit_time")
    )
    report["trades"] = stamped.to_dicts()
    if as_json:
        print_json(report)
    else:
        _print_summary(report)


def _print_summary(report: dict[str, Any]) -> None:
    from rich import box
    from rich.table import Table

    from xray_cli.console import out

    params = ", ".join(f"{k}={v}" for k, v in report["params"].items())
    where = f"{report['symbol']} {report['timeframe'] or ''}".strip()
    out.print(f"[bold]{report['strategy']}[/] ({params}) on {where}, {report['bars']:,} bars")
    out.print(f"{report['start']} .. {report['end']}")
    out.print(
        f"{report['mode']}, fee {report['fee']:g}, slippage {report['slippage']:g}, "
        f"cash {report['cash']:,.2f}"
    )
    table = Table(show_header=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, kind in METRIC_KINDS.items():
        table.add_row(name, fmt(report[name], kind))
    out.print(table)
    trades = report["trades"]
    if trades:
        shown = Table(
            title=f"last {min(len(trades), 10)} of {len(trades)} trades", box=box.SIMPLE, pad_edge=False
        )
        for name in ("entry", "exit", "side", "price in", "price out", "pnl"):
            shown.add_column(
                name, justify="left" if name in ("entry", "exit", "side") else "right", no_wrap=True
            )
        for trade in trades[-10:]:
            shown.add_row(
                _short(trade["entry_time"]),
                _short(trade["exit_time"]),
                trade["side"],
                f"{trade['entry_price']:.7g}",
                f"{trade['exit_price']:.7g}",
                fmt(trade["pnl"], "money"),
            )
        out.print(shown)


def _short(stamp: str) -> str:
    """2024-01-02T03:04:00Z -> 2024-01-02 03:04."""
    return stamp.replace("T", " ")[:16]
