"""Which symbols are worth trading: every symbol kept or dropped, with the reason.

A symbol is kept when it is in the universe, its data passed the quality checks, it is liquid
enough, and at least one strategy's default backtest clears every threshold (return, Sharpe,
drawdown, trade count). The kept symbol's best strategy is the qualifying one with the highest
Sharpe. The function never raises for one symbol's data: each outcome is a row.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from xray_core.settings import ResearchSettings

FILTER_SCHEMA = {
    "symbol": pl.String,
    "kept": pl.Boolean,
    "reason": pl.String,
    "best_strategy": pl.String,
    "params": pl.String,
    "total_return": pl.Float64,
    "sharpe": pl.Float64,
    "max_drawdown": pl.Float64,
    "n_trades": pl.Int64,
    "quote_volume_24h": pl.Float64,
}


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_total_return: float
    min_sharpe: float
    max_drawdown: float
    min_trades: int
    min_quote_volume: float

    @classmethod
    def from_settings(cls, settings: ResearchSettings) -> Thresholds:
        return cls(
            settings.min_total_return,
            settings.min_sharpe,
            settings.max_drawdown,
            settings.min_trades,
            settings.min_quote_volume,
        )

    def failures(self, row: dict[str, object]) -> list[str]:
        """What a backtest row misses, in words (empty: it qualifies)."""
        missed = []
        ret, sharpe, dd, trades = (row.get(k) for k in ("total_return", "sharpe", "max_drawdown", "n_trades"))
        if ret is None or ret < self.min_total_return:  # type: ignore[operator]
            missed.append(f"return {_pct(ret)} < {self.min_total_return:.1%}")
        if sharpe is None or sharpe < self.min_sharpe:  # type: ignore[operator]
            missed.append(f"Sharpe {_num(sharpe)} < {self.min_sharpe:g}")
        if dd is None or dd > self.max_drawdown:  # type: ignore[operator]
            missed.append(f"drawdown {_pct(dd)} > {self.max_drawdown:.0%}")
        if trades is None or trades < self.min_trades:  # type: ignore[operator]
            missed.append(f"{trades} trades < {self.min_trades}")
        return missed


def filter_symbols(
    universe: pl.DataFrame, quality: pl.DataFrame, backtests: pl.DataFrame, thresholds: Thresholds
) -> pl.DataFrame:
    """One row per market of the universe: kept or dropped, why, and the metrics it was judged on."""
    verdicts = {r["symbol"]: r for r in quality.iter_rows(named=True)} if quality.height else {}
    by_symbol: dict[str, list[dict[str, object]]] = {}
    for row in backtests.iter_rows(named=True) if backtests.height else []:
        by_symbol.setdefault(row["symbol"], []).append(row)
    rows = [
        _decide(market, verdicts.get(market["symbol"]), by_symbol.get(market["symbol"], []), thresholds)
        for market in universe.iter_rows(named=True)
    ]
    frame = (
        pl.DataFrame(rows, schema=FILTER_SCHEMA, orient="row") if rows else pl.DataFrame(schema=FILTER_SCHEMA)
    )
    return frame.sort(["kept", "sharpe"], descending=[True, True], nulls_last=True)


def _sharpe_or_last(run: dict[str, object]) -> float:
    """Sort key: a run's Sharpe ratio; a run without one (None) sorts below every other."""
    sharpe = run["sharpe"]
    return float(sharpe) if isinstance(sharpe, int | float) else float("-inf")


def _decide(
    market: dict[str, object],
    verdict: dict[str, object] | None,
    runs: list[dict[str, object]],
    thresholds: Thresholds,
) -> dict[str, object]:
    symbol, volume = market["symbol"], market.get("quote_volume_24h")
    row: dict[str, object] = dict.fromkeys(FILTER_SCHEMA) | {"symbol": symbol, "quote_volume_24h": volume}
    if not market.get("kept"):
        return row | {"kept": False, "reason": f"not in the universe: {market.get('reason')}"}
    if verdict is None or verdict.get("verdict") != "good":
        reason = verdict.get("reason") if verdict else "no quality verdict yet"
        return row | {"kept": False, "reason": f"data quality: {reason}"}
    if volume is not None and volume < thresholds.min_quote_volume:  # type: ignore[operator]
        return row | {
            "kept": False,
            "reason": f"illiquid: 24h volume {volume:,.0f} < {thresholds.min_quote_volume:,.0f}",
        }
    ok = [r for r in runs if r.get("error") is None]
    if not ok:
        error = next((r["error"] for r in runs if r.get("error")), "no backtest results")
        return row | {"kept": False, "reason": f"backtest failed: {error}"}
    qualifying = [r for r in ok if not thresholds.failures(r)]
    ranked = sorted(
        qualifying or ok,
        key=_sharpe_or_last,
        reverse=True,
    )
    best = ranked[0]
    metrics = {k: best[k] for k in ("total_return", "sharpe", "max_drawdown", "n_trades")}
    row |= metrics | {"best_strategy": best["strategy"], "params": best["params"]}
    if qualifying:
        return row | {"kept": True, "reason": f"{best['strategy']} clears every threshold"}
    return row | {
        "kept": False,
        "reason": f"no strategy qualifies; best {best['strategy']}: " + ", ".join(thresholds.failures(best)),
    }


def _pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else "n/a"


def _num(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "n/a"
