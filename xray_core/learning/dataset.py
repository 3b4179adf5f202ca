"""The training frame of the self-learning loop: point-in-time features and labels from the market.

Labels used to come from the user's own trades, so nothing could be trained before anyone traded.
Here every (symbol, bar) is a training row: its features describe the market at the bar's close and
its label is what the market did afterwards. User fills only add weight to the bars people traded.

Time conventions (those of the backtest engine): a candle's `timestamp` is its open time; the decision
for bar t is taken at t's close (= t + bar length) and fills at bar t+1's open.

Features (`FEATURES`, all scale-free so one model can serve many symbols):

* price/indicator state at t from `add_indicators` (data <= t): log_return, ret_n (log return over
  `momentum_bars`), close_sma / close_ema / vwap_gap (close over the average, minus 1), rsi, stoch_k,
  stoch_d, adx (/100), di_diff ((+DI - -DI)/100), macd_norm / macd_hist_norm / atr_norm / trange_norm
  (over close), bb_position ((close - lower)/(upper - lower), 0.5 for a zero-width band), bb_width
  ((upper - lower)/middle), realized_vol, volume_z (z-score of log(1 + volume) over `volume_window`);
* cross-asset, on trailing windows ending at t: bench_corr and bench_beta (of the symbol's log
  returns on the benchmark's, `cross_window` bars), bench_ret_1 and bench_ret_n (the benchmark's log
  return over 1 and `momentum_bars` bars). The benchmark's close is taken as of t (its bar with the
  latest open time <= t, at most one bar old), never a full-sample statistic;
* news: sent_decayed, sent_headlines (log(1 + n_headlines)) for the symbol and mkt_sent_decayed,
  mkt_sent_headlines for the market row "*". Bar t reads the sentiment hour h = floor_hour(t + bar) - 1h:
  the latest hour whose window [h, h + 1h) has ended by the decision time. A missing row (no
  sentiment frame, symbol absent, hour absent) reads 0, which is also what `sentiment_decayed` fades to
  without news: "no news" is neutral, not a separate state.

Labels (`LabelConfig`): `forward_return` = open[t+1+horizon] / open[t+1] - 1, the return of a position
filled at the next open and closed `horizon` bars later, as the backtest would fill it; label = 1 if
forward_return > threshold. With kind="triple_barrier", the return is the one realised at the first
barrier touched (see `_kernels.triple_barrier`) and label = 1 for the upper barrier, 0 for the lower,
forward_return > threshold at the vertical one. The last horizon + 1 bars of a symbol have no label yet:
`build_training_frame` drops them, `live_features` serves them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from xray_core.candles.schema import conform
from xray_core.errors import ConfigError, DataError
from xray_core.indicators import add_indicators
from xray_core.learning import _kernels

HOUR_MS = 3_600_000
MARKET = "*"
INDICATOR_WARMUP = 33  # MACD(12, 26, 9): the longest lookback of add_indicators

FEATURES: tuple[str, ...] = (
    "log_return", "ret_n", "close_sma", "close_ema", "vwap_gap", "rsi", "stoch_k", "stoch_d", "adx",
    "di_diff", "macd_norm", "macd_hist_norm", "atr_norm", "trange_norm", "bb_position", "bb_width",
    "realized_vol", "volume_z",
    "bench_corr", "bench_beta", "bench_ret_1", "bench_ret_n",
    "sent_decayed", "sent_headlines", "mkt_sent_decayed", "mkt_sent_headlines",
)
LABEL_COLUMNS: tuple[str, ...] = ("forward_return", "label")
LabelKind = Literal["forward_return", "triple_barrier"]


def _whole(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _finite(name: str, value: object, *, positive: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if not ok or (positive and float(value) <= 0):  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be a finite{' positive' if positive else ''} number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class LabelConfig:
    """What the model is asked to predict. horizon in bars; threshold on the forward return;
    up_atr/down_atr: triple-barrier distances in ATR_14 at the decision bar."""

    kind: LabelKind = "forward_return"
    horizon: int = 12
    threshold: float = 0.0
    up_atr: float = 2.0
    down_atr: float = 2.0

    def __post_init__(self) -> None:
        if self.kind not in ("forward_return", "triple_barrier"):
            raise ConfigError(f"label kind must be forward_return or triple_barrier, got {self.kind!r}")
        _whole("label horizon", self.horizon, 1)
        _finite("label threshold", self.threshold)
        _finite("up_atr", self.up_atr, positive=True)
        _finite("down_atr", self.down_atr, positive=True)


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """Windows of the features (bars) and the benchmark symbol. cross_min_periods: finite return pairs
    a correlation window needs (None = 90% of cross_window), so an isolated gap does not blank it."""

    benchmark: str = "BTC/USDT"
    cross_window: int = 168
    cross_min_periods: int | None = None
    momentum_bars: int = 12
    volume_window: int = 96

    def __post_init__(self) -> None:
        _whole("cross_window", self.cross_window, 2)
        _whole("momentum_bars", self.momentum_bars, 1)
        _whole("volume_window", self.volume_window, 2)
        if self.cross_min_periods is not None:
            _whole("cross_min_periods", self.cross_min_periods, 2)
            if self.cross_min_periods > self.cross_window:
                raise ConfigError(f"cross_min_periods {self.cross_min_periods} exceeds cross_window "
                                  f"{self.cross_window}")

    @property
    def min_pairs(self) -> int:
        return self.cross_min_periods or max(2, math.ceil(0.9 * self.cross_window))

    @property
    def warmup(self) -> int:
        """Index of a symbol's first bar with every feature defined (gap-free candles)."""
        return max(INDICATOR_WARMUP, self.cross_window, self.volume_window - 1, self.momentum_bars)


def _epoch_ms(column: pl.Series) -> np.ndarray:
    if isinstance(column.dtype, pl.Datetime):
        return column.dt.epoch("ms").to_numpy().astype(np.int64)
    if column.dtype.is_integer():
        return column.to_numpy().astype(np.int64)
    raise DataError(f"column {column.name!r} is {column.dtype}, expected a datetime or epoch milliseconds")


def _bar_ms(stamps: np.ndarray) -> int:
    return int(np.median(np.diff(stamps))) if stamps.size > 1 else HOUR_MS


def _sentiment_lookup(sentiment: pl.DataFrame | None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """symbol -> (hour ms sorted, sentiment_decayed, log1p(n_headlines)), nulls read as 0."""
    if sentiment is None:
        return {}
    needed = ("symbol", "hour", "sentiment_decayed", "n_headlines")
    missing = [c for c in needed if c not in sentiment.columns]
    if missing:
        raise DataError(f"sentiment frame lacks column(s) {', '.join(missing)}",
                        "pass the news_sentiment frame (xray_core.analysis.news)")
    frame = sentiment.select(
        pl.col("symbol"), pl.col("hour"),
        pl.col("sentiment_decayed").cast(pl.Float64).fill_null(0.0).fill_nan(0.0),
        pl.col("n_headlines").cast(pl.Float64).fill_null(0.0),
    )
    frame = frame.with_columns(pl.Series("hour_ms", _epoch_ms(frame["hour"]))).sort("symbol", "hour_ms")
    if frame.select(pl.struct("symbol", "hour_ms").is_duplicated().any()).item():
        raise DataError("sentiment frame has duplicate (symbol, hour) rows", "aggregate it once per hour")
    out = {}
    for (symbol,), part in frame.partition_by("symbol", as_dict=True).items():
        out[str(symbol)] = (part["hour_ms"].to_numpy(), part["sentiment_decayed"].to_numpy(),
                            np.log1p(part["n_headlines"].to_numpy()))
    return out


def _sentiment_at(table: tuple[np.ndarray, np.ndarray, np.ndarray] | None, hours: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    if table is None or table[0].size == 0:
        return np.zeros(hours.size), np.zeros(hours.size)
    stamps, decayed, count = table
    i = np.minimum(np.searchsorted(stamps, hours), stamps.size - 1)
    found = stamps[i] == hours
    return np.where(found, decayed[i], 0.0), np.where(found, count[i], 0.0)


def _benchmark_close(stamps: np.ndarray, bar_ms: int, bench: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The benchmark's close as of each stamp: its bar with the latest open time <= stamp, if that bar is
    at most one bar older; NaN otherwise (the bar's close is known at the stamp's own close)."""
    b_stamps, b_close = bench
    i = np.searchsorted(b_stamps, stamps, side="right") - 1
    ok = (i >= 0) & (stamps - b_stamps[np.maximum(i, 0)] <= bar_ms)
    return np.where(ok, b_close[np.maximum(i, 0)], np.nan)


def _lagged_log(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(values.size, np.nan)
    if values.size > lag:
        out[lag:] = np.log(values[lag:] / values[:-lag])
    return out


def _symbol_frame(symbol: str, candles: pl.DataFrame, bench: tuple[np.ndarray, np.ndarray],
                  sentiment: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                  cfg: FeatureConfig, min_bars: int) -> pl.DataFrame:
    """Every bar of one symbol: timestamp, symbol, FEATURES (NaN in warm-up) and open/high/low/atr."""
    frame = conform(candles, f"candles of {symbol}").sort("timestamp")
    if frame.height < min_bars:
        raise DataError(f"{symbol}: {frame.height} bars, needs at least {min_bars} (feature warm-up "
                        f"{cfg.warmup} + label horizon + 2)", "load a longer history or shorten the windows")
    ind = add_indicators(frame)
    col = {name: ind[name].to_numpy() for name in ind.columns if name != "timestamp"}
    stamps = _epoch_ms(ind["timestamp"])
    bar_ms = _bar_ms(stamps)
    close = col["close"]
    width = col["bb_upper"] - col["bb_lower"]
    with np.errstate(invalid="ignore", divide="ignore"):
        position = np.where(width > 0, (close - col["bb_lower"]) / width, 0.5)
    position[np.isnan(width)] = np.nan
    bench_close = _benchmark_close(stamps, bar_ms, bench)
    bench_ret = _lagged_log(bench_close, 1)
    corr, beta = _kernels.rolling_corr_beta(col["log_return"], bench_ret, cfg.cross_window, cfg.min_pairs)
    hours = (stamps + bar_ms) // HOUR_MS * HOUR_MS - HOUR_MS
    sent, heads = _sentiment_at(sentiment.get(symbol), hours)
    mkt_sent, mkt_heads = _sentiment_at(sentiment.get(MARKET), hours)
    values = {
        "log_return": col["log_return"],
        "ret_n": _lagged_log(close, cfg.momentum_bars),
        "close_sma": close / col["sma_20"] - 1.0,
        "close_ema": close / col["ema_20"] - 1.0,
        "vwap_gap": close / col["vwap_20"] - 1.0,
        "rsi": col["rsi_14"] / 100.0,
        "stoch_k": col["stoch_k"] / 100.0,
        "stoch_d": col["stoch_d"] / 100.0,
        "adx": col["adx_14"] / 100.0,
        "di_diff": (col["plus_di_14"] - col["minus_di_14"]) / 100.0,
        "macd_norm": col["macd"] / close,
        "macd_hist_norm": col["macd_hist"] / close,
        "atr_norm": col["atr_14"] / close,
        "trange_norm": col["trange"] / close,
        "bb_position": position,
        "bb_width": width / col["bb_middle"],
        "realized_vol": col["realized_vol_20"],
        "volume_z": _kernels.rolling_zscore(np.log1p(col["volume"]), cfg.volume_window),
        "bench_corr": corr,
        "bench_beta": beta,
        "bench_ret_1": bench_ret,
        "bench_ret_n": _lagged_log(bench_close, cfg.momentum_bars),
        "sent_decayed": sent,
        "sent_headlines": heads,
        "mkt_sent_decayed": mkt_sent,
        "mkt_sent_headlines": mkt_heads,
    }
    extra = {"_open": col["open"], "_high": col["high"], "_low": col["low"], "_atr": col["atr_14"]}
    return pl.DataFrame(
        [ind["timestamp"], pl.Series("symbol", [symbol] * frame.height, dtype=pl.String),
         *(pl.Series(name, values[name], dtype=pl.Float64, nan_to_null=False) for name in FEATURES),
         *(pl.Series(name, array, dtype=pl.Float64) for name, array in extra.items())]
    )


def _labels(frame: pl.DataFrame, cfg: LabelConfig) -> tuple[np.ndarray, np.ndarray]:
    open_ = frame["_open"].to_numpy()
    h = cfg.horizon
    if cfg.kind == "triple_barrier":
        return _kernels.triple_barrier(open_, frame["_high"].to_numpy(), frame["_low"].to_numpy(),
                                       frame["_atr"].to_numpy(), h, cfg.up_atr, cfg.down_atr, cfg.threshold)
    ret = np.full(open_.size, np.nan)
    if open_.size > h + 1:
        ret[: -(h + 1)] = open_[h + 1:] / open_[1 : -h] - 1.0
    label = np.where(np.isnan(ret), -1, (ret > cfg.threshold).astype(np.int64))
    return ret, label


def feature_frames(candles: Mapping[str, pl.DataFrame], sentiment: pl.DataFrame | None,
                   cfg: FeatureConfig, min_bars: int) -> list[pl.DataFrame]:
    """One all-bars frame per symbol (see `_symbol_frame`); shared by training and live prediction."""
    if not candles:
        raise DataError("no candles given", "pass a dict symbol -> candle frame")
    if cfg.benchmark not in candles:
        raise ConfigError(f"benchmark {cfg.benchmark!r} is not among the candles ({', '.join(candles)})",
                          "add its candles or set FeatureConfig(benchmark=...)")
    bench = conform(candles[cfg.benchmark], f"candles of {cfg.benchmark}").sort("timestamp")
    bench_arrays = (_epoch_ms(bench["timestamp"]), bench["close"].to_numpy())
    lookup = _sentiment_lookup(sentiment)
    return [_symbol_frame(s, c, bench_arrays, lookup, cfg, min_bars) for s, c in candles.items()]


def _complete() -> pl.Expr:
    return pl.all_horizontal(pl.col(name).is_finite() for name in FEATURES)


def _fill_counts(fills: pl.DataFrame | None, frame: pl.DataFrame, symbol: str) -> np.ndarray:
    """How many fills fell into each bar [t, t + bar) of `frame` (one symbol's bars)."""
    counts = np.zeros(frame.height, dtype=np.int64)
    if fills is None or fills.is_empty():
        return counts
    mine = fills.filter(pl.col("symbol") == symbol)
    if mine.is_empty():
        return counts
    stamps = _epoch_ms(frame["timestamp"])
    at = _epoch_ms(mine["timestamp"])
    i = np.searchsorted(stamps, at, side="right") - 1
    ok = (i >= 0) & (at < stamps[np.maximum(i, 0)] + _bar_ms(stamps))
    np.add.at(counts, i[ok], 1)
    return counts


def build_training_frame(
    candles: Mapping[str, pl.DataFrame],
    sentiment: pl.DataFrame | None = None,
    fills: pl.DataFrame | None = None,
    *,
    labels: LabelConfig | None = None,
    features: FeatureConfig | None = None,
    fill_bonus: float = 1.0,
) -> pl.DataFrame:
    """Stacked training rows, sorted by (timestamp, symbol): timestamp, symbol, FEATURES,
    forward_return, label (Int64), weight.

    Rows in the warm-up (any feature not finite) and the last horizon + 1 bars (label unknown) are
    dropped. `fills` (user trades with timestamp and symbol; side/price/amount are not needed) give
    weight 1 + fill_bonus to the bars a fill fell into, 1 elsewhere; None or empty -> weight 1."""
    lab = labels or LabelConfig()
    cfg = features or FeatureConfig()
    bonus = _finite("fill_bonus", fill_bonus)
    if bonus < 0:
        raise ConfigError(f"fill_bonus must be >= 0, got {fill_bonus!r}")
    if fills is not None:
        missing = [c for c in ("timestamp", "symbol") if c not in fills.columns]
        if missing:
            raise DataError(f"fills lack column(s) {', '.join(missing)}",
                            "pass timestamp and symbol per fill")
    parts = []
    for frame in feature_frames(candles, sentiment, cfg, cfg.warmup + lab.horizon + 2):
        ret, label = _labels(frame, lab)
        weight = 1.0 + bonus * (_fill_counts(fills, frame, frame["symbol"][0]) > 0)
        frame = frame.with_columns(pl.Series("forward_return", ret, dtype=pl.Float64),
                                   pl.Series("label", label, dtype=pl.Int64),
                                   pl.Series("weight", weight, dtype=pl.Float64))
        parts.append(frame.filter(_complete() & (pl.col("label") >= 0)))
    out = pl.concat(parts).select("timestamp", "symbol", *FEATURES, *LABEL_COLUMNS, "weight")
    if out.is_empty():
        raise DataError("no complete labelled rows", "load a longer history")
    return out.sort("timestamp", "symbol")


def live_features(
    candles: Mapping[str, pl.DataFrame],
    sentiment: pl.DataFrame | None = None,
    *,
    features: FeatureConfig | None = None,
    last: int = 1,
) -> pl.DataFrame:
    """The features of each symbol's `last` most recent bars (no labels: they are not known yet), sorted
    by (timestamp, symbol). The values equal those `build_training_frame` gives the same bars."""
    cfg = features or FeatureConfig()
    _whole("last", last, 1)
    frames = feature_frames(candles, sentiment, cfg, cfg.warmup + 1)
    parts = [f.filter(_complete()).tail(last) for f in frames]
    return pl.concat(parts).select("timestamp", "symbol", *FEATURES).sort("timestamp", "symbol")


def check_trainable(frame: pl.DataFrame, min_rows: int = 2) -> None:
    """DataError unless `frame` has the feature and label columns, >= min_rows rows and both classes:
    a classifier cannot learn from one class (and would silently predict a constant)."""
    missing = [c for c in (*FEATURES, "label") if c not in frame.columns]
    if missing:
        raise DataError(f"training frame lacks column(s) {', '.join(missing)}",
                        "build it with build_training_frame")
    if frame.height < min_rows:
        raise DataError(f"training frame has {frame.height} rows, needs at least {min_rows}",
                        "load more history")
    classes = frame["label"].unique().sort().to_list()
    if len(classes) < 2:
        raise DataError(f"label is constant ({classes[0] if classes else 'none'}) over {frame.height} rows",
                        "lengthen the history, or change the label threshold/horizon")
