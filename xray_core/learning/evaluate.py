"""Out-of-sample evaluation of a signal model through the backtest engine, next to buy-and-hold.

A classifier's accuracy says little about money: costs, holding periods and the few large moves decide
the outcome. So predictions are turned into positions and traded by `run_backtest` — the same fills
(decision at bar t's close, fill at t+1's open), fees and metrics as every other strategy in X-Ray —
and compared with buy-and-hold over exactly the same windows.

Windows. Predictions carry timestamp, symbol, p_up, optionally `fold` (default 0) and `forward_return`
(for the hit rate). A window is one (symbol, fold): the symbol's candle bars from its first to its last
predicted timestamp. Per bar, the target is +1 when p_up > long_above, -1 when p_up < short_below (only
if set; needs BacktestConfig(mode="long_short")), else 0; a bar without a prediction is flat. The
target of the window's last bar never fills, and a position open at the end is valued at the last close
(the engine's conventions). Buy-and-hold is the all-long target on the same bars with the same fees and
slippage (stops disabled): it enters at the window's second open. Windows of fewer than 2 bars are skipped.

Aggregates (`OosReport.metrics`, ready for MLflow):

* Each symbol's windows are chained in time (fold k+1 starts with fold k's final equity; an open position
  is marked at fold k's last close and the next window starts flat). The portfolio gives every symbol
  the same starting capital, without rebalancing: its equity is the mean of the symbols' chained
  equity curves (each 1 at the start, carried flat over bars it has no window for) on the union of
  their bars.
* oos_return: portfolio final equity - 1. oos_max_drawdown: largest fall from its running peak (a
  positive fraction). oos_sharpe: mean / std (ddof 1) of its per-bar returns (the first bar's return is
  0, as in the engine) x sqrt(bars per 365-day year); NaN when the returns are all 0 (never traded).
  With one symbol and one window these equal the engine's own total_return, max_drawdown and sharpe.
* oos_trades: trades over all windows (the engine's n_trades, a position open at a window's end counts).
* oos_hit_rate: over the rows where the model took a position (target != 0) and forward_return is
  known, the share whose direction matched it (long and forward_return > 0, short and < 0); NaN when
  it never took a position. It measures the calls the strategy acted on, not the classifier overall.
* bh_sharpe, bh_return, bh_max_drawdown: the same for buy-and-hold.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from xray_core.backtest import BacktestConfig, run_backtest
from xray_core.backtest.metrics import Calendar
from xray_core.candles.schema import conform
from xray_core.errors import ConfigError, DataError
from xray_core.indicators import atr as atr_indicator
from xray_core.learning.splits import Fold
from xray_core.progress import report

METRIC_KEYS: tuple[str, ...] = (
    "oos_sharpe", "oos_return", "oos_max_drawdown", "oos_hit_rate", "oos_trades",
    "bh_sharpe", "bh_return", "bh_max_drawdown",
)
FitPredict = Callable[[pl.DataFrame, pl.DataFrame], np.ndarray]


@dataclass(frozen=True, slots=True)
class EvalConfig:
    """long_above / short_below: P(up) thresholds for +1 / -1 (short_below None: never short);
    backtest: fills, fees and sizing of the strategy and of buy-and-hold."""

    long_above: float = 0.55
    short_below: float | None = None
    backtest: BacktestConfig = field(default_factory=BacktestConfig)

    def __post_init__(self) -> None:
        if not (isinstance(self.long_above, int | float) and 0.0 <= self.long_above < 1.0):
            raise ConfigError(f"long_above must be in [0, 1), got {self.long_above!r}")
        if self.short_below is not None:
            if not (isinstance(self.short_below, int | float) and 0.0 < self.short_below <= self.long_above):
                raise ConfigError(f"short_below must be in (0, long_above], got {self.short_below!r}")
            if self.backtest.mode != "long_short":
                raise ConfigError("short_below is set but the backtest is long_only",
                                  "use BacktestConfig(mode='long_short') or drop short_below")


@dataclass(frozen=True, slots=True)
class OosReport:
    """windows: one row per (symbol, fold); metrics: the aggregates of METRIC_KEYS (floats);
    equity: the portfolio equity of the model (`oos`) and of buy-and-hold (`bh`) per timestamp;
    predictions: the rows evaluated with their `position`."""

    windows: pl.DataFrame
    metrics: dict[str, float]
    equity: pl.DataFrame
    predictions: pl.DataFrame


def positions_from(p_up: np.ndarray, config: EvalConfig) -> np.ndarray:
    """Targets (+1/0/-1, int8) from P(up) under `config`'s thresholds."""
    out = np.where(p_up > config.long_above, 1, 0).astype(np.int8)
    if config.short_below is not None:
        out[p_up < config.short_below] = -1
    return out


def _ratio(num: float, den: float) -> float:
    if den > 0.0:
        return num / den
    return math.inf if num > 0 else -math.inf if num < 0 else math.nan


def curve_metrics(equity: np.ndarray, stamps_ms: np.ndarray) -> tuple[float, float, float]:
    """(sharpe, total return, max drawdown) of an equity curve starting from 1, per the module rules."""
    prev = np.concatenate([[1.0], equity[:-1]])
    returns = equity / prev - 1.0
    std = float(np.std(returns, ddof=1)) if returns.size > 1 else 0.0
    per_year = Calendar.from_timestamps(stamps_ms).bars_per_year
    sharpe = _ratio(float(np.mean(returns)), std) * math.sqrt(per_year)
    drawdown = float(np.max(1.0 - equity / np.maximum.accumulate(np.maximum(equity, 1.0))))
    return sharpe, float(equity[-1] - 1.0), max(drawdown, 0.0)


def _portfolio(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Union timeline and the equal-capital mean of the chained per-symbol curves, carried flat."""
    timeline = np.unique(np.concatenate([stamps for stamps, _ in curves.values()]))
    total = np.zeros(timeline.size)
    for stamps, curve in curves.values():
        i = np.searchsorted(stamps, timeline, side="right") - 1
        total += np.where(i >= 0, curve[np.maximum(i, 0)], 1.0)
    return timeline, total / len(curves)


def _checked_predictions(predictions: pl.DataFrame) -> pl.DataFrame:
    missing = [c for c in ("timestamp", "symbol", "p_up") if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {', '.join(missing)}", "pass timestamp, symbol, p_up")
    if predictions.is_empty():
        raise DataError("no predictions to evaluate", "evaluate at least one test block")
    frame = predictions.with_columns(
        pl.col("timestamp").dt.epoch("ms").alias("_ms"), pl.col("p_up").cast(pl.Float64),
        (pl.col("fold") if "fold" in predictions.columns else pl.lit(0)).cast(pl.Int64).alias("fold"),
        (pl.col("forward_return") if "forward_return" in predictions.columns
         else pl.lit(None)).cast(pl.Float64).alias("forward_return"),
    )
    p = frame["p_up"].to_numpy()
    if not (np.isfinite(p) & (p >= 0) & (p <= 1)).all():
        raise DataError("p_up has values outside [0, 1] or missing", "pass probabilities of an up move")
    if frame.select(pl.struct("symbol", "_ms").is_duplicated().any()).item():
        raise DataError("predictions have duplicate (symbol, timestamp) rows", "one prediction per bar")
    return frame.sort("symbol", "_ms")


def evaluate_oos(
    predictions: pl.DataFrame, candles: Mapping[str, pl.DataFrame], config: EvalConfig | None = None
) -> OosReport:
    """Backtest the model's positions per (symbol, fold) window and buy-and-hold on the same bars;
    see the module docstring for every definition."""
    cfg = config or EvalConfig()
    bh_config = dataclasses.replace(cfg.backtest, sl_atr=None, tp_atr=None)
    frame = _checked_predictions(predictions)
    frame = frame.with_columns(pl.Series("position", positions_from(frame["p_up"].to_numpy(), cfg)))
    rows: list[dict[str, object]] = []
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {"oos": {}, "bh": {}}
    for (symbol,), part in frame.partition_by("symbol", as_dict=True, maintain_order=True).items():
        if symbol not in candles:
            raise DataError(f"no candles for predicted symbol {symbol!r}", "pass candles for every symbol")
        bars = conform(candles[symbol], f"candles of {symbol}").sort("timestamp")
        stamps = bars["timestamp"].dt.epoch("ms").to_numpy().astype(np.int64)
        open_, high, low, close = (bars[name].to_numpy() for name in ("open", "high", "low", "close"))
        atr = atr_indicator(high, low, close, 14) if cfg.backtest.uses_stops else None
        chains: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"oos": [], "bh": []}
        last_end = -1
        for (fold,), window in sorted(part.partition_by("fold", as_dict=True).items(), key=lambda kv: kv[0]):
            ms = window["_ms"].to_numpy()
            lo, hi = np.searchsorted(stamps, [ms.min(), ms.max()])
            at = np.searchsorted(stamps, ms)
            if hi >= stamps.size or not np.array_equal(stamps[np.minimum(at, stamps.size - 1)], ms):
                raise DataError(f"{symbol}: fold {fold} predicts bars that are not in its candles",
                                "predict on the candles' own timestamps")
            if lo <= last_end:
                raise DataError(f"{symbol}: fold {fold} overlaps an earlier fold's window",
                                "test blocks must be disjoint in time")
            last_end = int(hi)
            if hi - lo + 1 < 2:
                continue
            cut = slice(int(lo), int(hi) + 1)
            targets = np.zeros(hi - lo + 1, dtype=np.int8)
            targets[at - lo] = window["position"].to_numpy()
            args = (open_[cut], high[cut], low[cut], close[cut], stamps[cut])
            model = run_backtest(*args, targets, cfg.backtest, atr=None if atr is None else atr[cut])
            hold = run_backtest(*args, np.ones_like(targets), bh_config)
            for key, result in (("oos", model), ("bh", hold)):
                chains[key].append((stamps[cut], result.equity / cfg.backtest.cash))
            acted = window.filter((pl.col("position") != 0) & pl.col("forward_return").is_finite())
            hits = acted.filter(pl.col("forward_return") * pl.col("position") > 0).height
            m, b = model.metrics, hold.metrics
            rows.append({
                "symbol": symbol, "fold": fold, "start_ms": int(stamps[lo]), "end_ms": int(stamps[hi]),
                "n_bars": int(hi - lo + 1), "n_predictions": window.height, "n_positions": acted.height,
                "n_hits": hits, "hit_rate": hits / acted.height if acted.height else math.nan,
                "sharpe": m.sharpe, "total_return": m.total_return, "max_drawdown": m.max_drawdown,
                "n_trades": m.n_trades, "exposure": m.exposure, "bh_sharpe": b.sharpe,
                "bh_total_return": b.total_return, "bh_max_drawdown": b.max_drawdown,
            })
        for key, chain in chains.items():
            if chain:
                curves[key][symbol] = _chain(chain)
    if not rows:
        raise DataError("every prediction window has fewer than 2 bars", "evaluate longer test blocks")
    windows = pl.DataFrame(rows).with_columns(
        pl.col("start_ms", "end_ms").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    ).rename({"start_ms": "start", "end_ms": "end"})
    timeline, oos_equity = _portfolio(curves["oos"])
    _, bh_equity = _portfolio(curves["bh"])
    oos = curve_metrics(oos_equity, timeline)
    bh = curve_metrics(bh_equity, timeline)
    n_positions = int(windows["n_positions"].sum())
    metrics = {
        "oos_sharpe": oos[0], "oos_return": oos[1], "oos_max_drawdown": oos[2],
        "oos_hit_rate": int(windows["n_hits"].sum()) / n_positions if n_positions else math.nan,
        "oos_trades": float(windows["n_trades"].sum()),
        "bh_sharpe": bh[0], "bh_return": bh[1], "bh_max_drawdown": bh[2],
    }
    equity = pl.DataFrame({"timestamp": timeline, "oos": oos_equity, "bh": bh_equity}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"))
    return OosReport(windows, {k: float(v) for k, v in metrics.items()}, equity, frame.drop("_ms"))


def _chain(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows' curves (each from 1) as one curve: window k+1 scaled by k's final value."""
    scale = 1.0
    stamps, values = [], []
    for window_stamps, curve in parts:
        stamps.append(window_stamps)
        values.append(curve * scale)
        scale *= float(curve[-1])
    return np.concatenate(stamps), np.concatenate(values)


def walk_forward_evaluate(
    frame: pl.DataFrame,
    candles: Mapping[str, pl.DataFrame],
    fit_predict: FitPredict,
    splits: list[Fold],
    config: EvalConfig | None = None,
) -> OosReport:
    """Fit on each fold's training rows and predict its test rows with `fit_predict(train, test)`
    (returning P(up) per test row), then `evaluate_oos` all test predictions: any model plugs in."""
    if not splits:
        raise ConfigError("no folds to evaluate", "build them with purged_walk_forward")
    parts = []
    report("fold", "walk-forward folds", 0, len(splits))
    for k, (train, test) in enumerate(splits):
        train_frame, test_frame = frame[np.asarray(train)], frame[np.asarray(test)]
        p_up = np.asarray(fit_predict(train_frame, test_frame), dtype=np.float64).reshape(-1)
        if p_up.size != test_frame.height:
            raise DataError(f"fold {k}: fit_predict returned {p_up.size} values for {test_frame.height} rows",
                            "return one P(up) per test row, in the test frame's order")
        keep = [c for c in ("timestamp", "symbol", "forward_return") if c in test_frame.columns]
        parts.append(test_frame.select(keep).with_columns(pl.Series("p_up", p_up), pl.lit(k).alias("fold")))
        report("fold", "walk-forward folds", k + 1, len(splits))
    return evaluate_oos(pl.concat(parts, how="vertical_relaxed"), candles, config)


def fold_equity(report: OosReport) -> pl.DataFrame:
    """The portfolio's out-of-sample equity over each fold's test span, rebased to 1 where the fold
    starts (divided by the value just before its first bar, or 1 for the first fold): columns fold,
    timestamp, oos, bh, flat (flat: never trading, 1 throughout). Folds run one after another in time,
    so the rebased pieces multiply back to the chained curve of `report.equity`."""
    equity = report.equity.sort("timestamp")
    stamps = equity["timestamp"].dt.epoch("ms").to_numpy()
    spans = report.windows.group_by("fold").agg(pl.col("start").min(), pl.col("end").max()).sort("fold")
    parts = []
    for fold, start, end in spans.iter_rows():
        lo = int(np.searchsorted(stamps, _ms(start), side="left"))
        hi = int(np.searchsorted(stamps, _ms(end), side="right"))
        if hi - lo < 1:
            continue
        piece = equity[lo:hi]
        before = equity[lo - 1] if lo > 0 else None
        parts.append(piece.select(
            pl.lit(int(fold), pl.Int64).alias("fold"), "timestamp",
            (pl.col("oos") / (before["oos"].item() if before is not None else 1.0)).alias("oos"),
            (pl.col("bh") / (before["bh"].item() if before is not None else 1.0)).alias("bh"),
            pl.lit(1.0).alias("flat")))
    if not parts:
        return pl.DataFrame(schema={"fold": pl.Int64, "timestamp": equity["timestamp"].dtype,
                                    "oos": pl.Float64, "bh": pl.Float64, "flat": pl.Float64})
    return pl.concat(parts)


def fold_summary(curves: pl.DataFrame) -> pl.DataFrame:
    """Per fold of `fold_equity`: first and last bar, and the return of the model, of buy-and-hold and
    of staying flat (0) over it."""
    return curves.group_by("fold", maintain_order=True).agg(
        pl.col("timestamp").min().alias("start"), pl.col("timestamp").max().alias("end"),
        (pl.col("oos").last() - 1.0).alias("oos_return"), (pl.col("bh").last() - 1.0).alias("bh_return"),
        (pl.col("flat").last() - 1.0).alias("flat_return"))


def _ms(value: datetime.datetime) -> int:
    """Epoch ms of a window bound (a UTC datetime from `windows`)."""
    return int(value.timestamp() * 1000)
