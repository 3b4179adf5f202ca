"""The `model` strategy: positions from a trained model's probability that the next move is up.

The model (`Predictor`) is anything with `feature_names` and `predict_proba(frame) -> P(up)` per row:
one of `xray_core.learning.models`, or a registered MLflow model loaded by alias. Its inputs are built
by `xray_core.learning.dataset.feature_frames`, the very function that built its training data, so a
backtest, an optimisation and live trading all feed it the same features. Those features include the
symbol's co-movement with a benchmark and news sentiment, which one symbol's bars cannot supply: bind
the strategy to a symbol and its market context first (`bind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from xray_core.candles.bars import Bars
from xray_core.errors import ConfigError
from xray_core.strategies.base import Mode, Strategy, StrategyParams, flat_before


class Predictor(Protocol):
    feature_names: list[str]

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """P(next move up) per row of `frame` (timestamp, symbol, features; time order per symbol)."""
        ...


@dataclass(frozen=True)
class MarketContext:
    """What the features need besides the symbol's own bars."""

    symbol: str
    benchmark: pl.DataFrame | None = None  # candles of the benchmark (None when the symbol is it)
    sentiment: pl.DataFrame | None = None  # news_sentiment rows (symbol, hour, ...)


def candles_of(bars: Bars) -> pl.DataFrame:
    """The candle frame (xray_core.candles.schema) of `bars`."""
    return pl.DataFrame(
        {
            "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        }
    )


class ModelParams(StrategyParams):
    long_above: float = Field(0.55, ge=0.5, le=0.99, description="Go long when P(up) exceeds this")
    short_below: float = Field(0.45, ge=0.01, le=0.5, description="Go short (long_short) when P(up) is below")

    @model_validator(mode="after")
    def _ordered(self) -> ModelParams:
        if self.short_below > self.long_above:
            raise ValueError("short_below must not exceed long_above")
        return self


class ModelStrategy(Strategy):
    name = "model"
    description = "Long when the model's P(up) > long_above, short (long_short) when < short_below"
    Params = ModelParams

    def __init__(self, predictor: Predictor | None = None, context: MarketContext | None = None) -> None:
        self.predictor = predictor
        self.context = context

    def bind(self, predictor: Predictor, context: MarketContext) -> ModelStrategy:
        """This strategy for one symbol, with its model and market context."""
        return ModelStrategy(predictor, context)

    def warmup(self, params: ModelParams) -> int:
        from xray_core.learning.dataset import FeatureConfig

        return FeatureConfig().warmup

    def positions(self, bars: Bars, params: ModelParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        if self.predictor is None or self.context is None:
            raise ConfigError(
                "the model strategy has no model",
                "train and promote one (`xray train`), or pick a rule strategy such as sma_cross",
            )
        frame = self._features(bars)
        missing = [name for name in self.predictor.feature_names if name not in frame.columns]
        if missing:
            raise ConfigError(
                f"the model needs features X-Ray does not build: {', '.join(missing)}",
                "retrain it on the current feature set",
            )
        up = np.asarray(self.predictor.predict_proba(frame), dtype=np.float64)
        up = np.where(np.isfinite(up), up, 0.5)  # a row the model cannot judge: no opinion
        positions = (up > params.long_above).astype(np.int8)
        if mode is Mode.LONG_SHORT:
            positions -= (up < params.short_below).astype(np.int8)
        return flat_before(positions, self.warmup(params))

    def _features(self, bars: Bars) -> pl.DataFrame:
        from xray_core.learning.dataset import FEATURES, FeatureConfig, feature_frames

        assert self.context is not None
        config = FeatureConfig()
        candles = {self.context.symbol: candles_of(bars)}
        if self.context.symbol != config.benchmark:
            if self.context.benchmark is None:
                raise ConfigError(
                    f"the model strategy needs {config.benchmark} candles for {self.context.symbol}",
                    "bind it with the benchmark's candles",
                )
            candles[config.benchmark] = self.context.benchmark
        frames = feature_frames(candles, self.context.sentiment, config, min_bars=1)
        mine = next(f for f in frames if f["symbol"][0] == self.context.symbol)
        return mine.select("timestamp", "symbol", *FEATURES)
