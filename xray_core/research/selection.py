"""Per-symbol strategy selection between the best rule strategy and the champion models.

A model trades a symbol only when it has earned it there. The evidence is the champion's walk-forward
record: the P(up) each fold's model (trained only on the past) gave on its test block, logged with the
version. Those predictions are replayed through the `model` strategy itself (`ReplayPredictor` bound to
`ModelStrategy`: the same thresholds, warm-up and flat-on-unknown rule as live trading), and the
symbol's rule strategy (its optimised parameters) is backtested on exactly the same bars — each test
block of the symbol, chained in time — with the same engine and the same costs. Both get the same
score (`xray_core.learning.evaluate.curve_metrics` on the chained equity).

A model wins a symbol when its Sharpe on those windows is positive, above the rule's (a rule that
never traded counts as 0), and it traded at least `min_trades` times there. The rule's parameters were
optimised on the whole history, the model's predictions are strictly out of sample, so ties and doubt
go to the rule. Every symbol's decision is kept with both scores and the reason, for the bundle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.candles.bars import Bars
from xray_core.errors import XrayError
from xray_core.indicators import atr as atr_indicator
from xray_core.learning.evaluate import curve_metrics
from xray_core.strategies import MarketContext, Mode, ModelStrategy, get_strategy

MODEL = "model"


class ReplayPredictor:
    """A model's logged out-of-sample P(up) as a `Predictor`: rows without a prediction read NaN (the
    model strategy stays flat there)."""

    feature_names: list[str] = []  # noqa: RUF012 (no features: the predictions are already made)

    def __init__(self, predictions: pl.DataFrame) -> None:
        self.lookup = predictions.select(
            "symbol", pl.col("timestamp").dt.epoch("ms").alias("_ms"), pl.col("p_up").cast(pl.Float64)
        ).unique(["symbol", "_ms"], keep="last")

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        rows = frame.select("symbol", pl.col("timestamp").dt.epoch("ms").alias("_ms"))
        joined = rows.join(self.lookup, on=["symbol", "_ms"], how="left", maintain_order="left")
        return joined["p_up"].fill_null(math.nan).to_numpy()


@dataclass(frozen=True, slots=True)
class Score:
    sharpe: float  # NaN: never traded
    total_return: float
    n_trades: int
    n_bars: int

    @property
    def rank(self) -> float:
        """The Sharpe, with "never traded" as flat (0)."""
        return self.sharpe if math.isfinite(self.sharpe) else 0.0


@dataclass(frozen=True, slots=True)
class Candidate:
    """A champion model as a contender: its kind, registered version and walk-forward predictions."""

    kind: str
    version: int
    predictions: pl.DataFrame  # timestamp, symbol, p_up, fold


def windows_of(predictions: pl.DataFrame, symbol: str) -> list[tuple[int, int]]:
    """(first, last) predicted open time in ms of each of `symbol`'s test blocks, in time order."""
    mine = predictions.filter(pl.col("symbol") == symbol)
    if not mine.height:
        return []
    fold = pl.col("fold") if "fold" in mine.columns else pl.lit(0)
    spans = (
        mine.with_columns(fold.alias("_fold"), pl.col("timestamp").dt.epoch("ms").alias("_ms"))
        .group_by("_fold")
        .agg(pl.col("_ms").min().alias("lo"), pl.col("_ms").max().alias("hi"))
        .sort("lo")
    )
    return [(int(lo), int(hi)) for lo, hi in spans.select("lo", "hi").iter_rows()]


def score_on_windows(
    bars: Bars, positions: np.ndarray, windows: list[tuple[int, int]], config: BacktestConfig
) -> Score:
    """Backtest `positions` (computed on all of `bars`, so each bar's target saw only earlier bars) on
    each window's bars, chain the windows' equity in time, and score the chain."""
    atr = atr_indicator(bars.high, bars.low, bars.close, 14) if config.uses_stops else None
    stamps, values, scale, trades = [], [], 1.0, 0
    for start, end in windows:
        lo, hi = np.searchsorted(bars.timestamp, [start, end + 1])
        if hi - lo < 2:
            continue
        cut = slice(int(lo), int(hi))
        result = run_backtest(bars.open[cut], bars.high[cut], bars.low[cut], bars.close[cut],
                              bars.timestamp[cut], positions[cut], config,
                              atr=None if atr is None else atr[cut])
        curve = result.equity / config.cash
        stamps.append(bars.timestamp[cut])
        values.append(curve * scale)
        scale *= float(curve[-1])
        trades += int(result.metrics.n_trades)
    if not stamps:
        return Score(math.nan, 0.0, 0, 0)
    timeline, equity = np.concatenate(stamps), np.concatenate(values)
    sharpe, total, _ = curve_metrics(equity, timeline)
    return Score(sharpe if trades else math.nan, total, trades, int(timeline.size))


@dataclass(frozen=True, slots=True)
class Selection:
    """One symbol's decision: the bundle entry to trade and the record of why."""

    entry: dict[str, Any]  # symbol, strategy, params, group (and model: the kind, on `model`)
    record: dict[str, Any]  # chosen, reason, rule/model scores


def select(
    plan: Mapping[str, Any],
    bars: Bars,
    benchmark: pl.DataFrame | None,
    candidates: list[Candidate],
    config: BacktestConfig,
    min_trades: int,
) -> Selection:
    """The bundle entry of one symbol: its rule `plan` (symbol, strategy, params, group) unless a
    champion model beats it on the model's walk-forward windows (module docstring)."""
    symbol, rule_name = str(plan["symbol"]), str(plan["strategy"])
    mode = Mode(config.mode)
    record: dict[str, Any] = {
        "chosen": rule_name, "rule_strategy": rule_name, "rule_sharpe": None, "model": None,
        "model_version": None, "model_sharpe": None, "model_trades": None, "windows": 0, "bars": 0,
    }
    scored: list[tuple[Candidate, Score, Score, int]] = []
    problems: list[str] = []
    rule = get_strategy(rule_name)
    try:
        rule_positions = rule.positions(bars, rule.params(plan.get("params") or {}), mode)
    except XrayError as exc:  # too few bars to compare on: the research's plan stands
        return Selection(dict(plan), record | {"reason": f"{rule_name} kept: cannot compare ({exc.problem})"})
    context = MarketContext(symbol, benchmark)
    for candidate in candidates:
        windows = windows_of(candidate.predictions, symbol)
        if not windows:
            problems.append(f"{candidate.kind} v{candidate.version} has no out-of-sample record here")
            continue
        strategy = ModelStrategy().bind(ReplayPredictor(candidate.predictions), context)
        try:
            positions = strategy.positions(bars, strategy.params(), mode)
        except XrayError as exc:
            problems.append(f"{candidate.kind} v{candidate.version}: {exc.problem}")
            continue
        model_score = score_on_windows(bars, positions, windows, config)
        rule_score = score_on_windows(bars, rule_positions, windows, config)
        scored.append((candidate, model_score, rule_score, len(windows)))
    if not scored:
        reason = "; ".join(problems) or "no champion model to compare with"
        return Selection(dict(plan), record | {"reason": f"{rule_name} kept: {reason}"})
    candidate, model, rule_score, n_windows = max(scored, key=lambda s: s[1].rank)
    record |= {
        "rule_sharpe": _finite(rule_score.sharpe), "model": candidate.kind,
        "model_version": candidate.version, "model_sharpe": _finite(model.sharpe),
        "model_trades": model.n_trades, "windows": n_windows, "bars": model.n_bars,
    }
    versus = (f"model {candidate.kind} v{candidate.version} Sharpe {_show(model.sharpe)} "
              f"({model.n_trades} trades) vs {rule_name} {_show(rule_score.sharpe)} "
              f"on {n_windows} walk-forward windows ({model.n_bars} bars)")
    if model.n_trades < min_trades:
        return Selection(dict(plan), record | {"reason": f"{rule_name} kept: {versus}; "
                                                        f"fewer than {min_trades} model trades"})
    if model.rank <= max(rule_score.rank, 0.0):
        return Selection(dict(plan), record | {"reason": f"{rule_name} kept: {versus}"})
    entry: dict[str, Any] = {"symbol": symbol, "strategy": MODEL, "params": {}, "group": plan.get("group"),
                             "model": candidate.kind}
    return Selection(entry, record | {"chosen": MODEL, "reason": f"model wins: {versus}"})


def select_all(
    plans: list[dict[str, Any]],
    candles: Mapping[str, pl.DataFrame],
    candidates: list[Candidate],
    config: BacktestConfig,
    min_trades: int,
    benchmark: str = "BTC/USDT",
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Bundle entries and selection records of every planned symbol (a symbol without candles keeps its
    rule plan, with the reason)."""
    bench = candles.get(benchmark)
    entries, records = [], {}
    for plan in plans:
        symbol = str(plan["symbol"])
        if symbol not in candles:
            entries.append(dict(plan))
            records[symbol] = {"chosen": plan["strategy"], "rule_strategy": plan["strategy"],
                               "reason": f"{plan['strategy']} kept: no candles to compare on"}
            continue
        chosen = select(plan, Bars.from_frame(candles[symbol]), None if symbol == benchmark else bench,
                        candidates, config, min_trades)
        entries.append(chosen.entry)
        records[symbol] = chosen.record
    return entries, records


def summary(records: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many symbols trade on `model` and how many on each rule strategy."""
    counts: dict[str, int] = {}
    for record in records.values():
        counts[str(record["chosen"])] = counts.get(str(record["chosen"]), 0) + 1
    return counts


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _show(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a (no trades)"


__all__ = ["Candidate", "ReplayPredictor", "Score", "Selection", "score_on_windows", "select", "select_all",
           "summary", "windows_of"]
