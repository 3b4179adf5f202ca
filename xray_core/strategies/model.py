"""The `model` strategy: positions from a trained classifier's probability that the next move is up.

The classifier is anything with `feature_names` and `predict_proba(features) -> P(up)` (a registered
MLflow model wrapped by issue 4's loader, or any scikit-learn style estimator adapted to it). Its
features are built from the bars by `features_of`, the same function in backtest and live trading.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from xray_core.candles.bars import Bars
from xray_core.errors import ConfigError
from xray_core.indicators import IndicatorConfig, add_indicators
from xray_core.indicators.trend import adx_lookback, macd_lookback
from xray_core.strategies.base import Mode, Strategy, StrategyParams, flat_before


class Predictor(Protocol):
    feature_names: list[str]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(next bar's return > 0) for each row of `features` (columns in `feature_names` order)."""
        ...


def features_of(bars: Bars, config: IndicatorConfig | None = None) -> pl.DataFrame:
    """Candle columns plus every indicator column, NaN during each indicator's warm-up."""
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        }
    )
    return add_indicators(frame, config)


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

    def __init__(self, predictor: Predictor | None = None, config: IndicatorConfig | None = None) -> None:
        self.predictor = predictor
        self.config = config or IndicatorConfig()

    def with_predictor(self, predictor: Predictor) -> ModelStrategy:
        return ModelStrategy(predictor, self.config)

    def warmup(self, params: ModelParams) -> int:
        c = self.config
        return max(
            macd_lookback(c.macd_fast, c.macd_slow, c.macd_signal),
            adx_lookback(c.adx_period),
            c.sma_period,
            c.bb_period,
            c.realized_vol_window,
            c.stoch_fastk + c.stoch_slowk + c.stoch_slowd,
        )

    def positions(self, bars: Bars, params: ModelParams, mode: Mode = Mode.LONG_ONLY) -> np.ndarray:
        if self.predictor is None:
            raise ConfigError(
                "the model strategy has no model",
                "train and promote one (`xray train`), or pick a rule strategy such as sma_cross",
            )
        frame = features_of(bars, self.config)
        missing = [name for name in self.predictor.feature_names if name not in frame.columns]
        if missing:
            raise ConfigError(
                f"the model needs features X-Ray does not build: {', '.join(missing)}",
                "retrain it on the current feature set",
            )
        features = frame.select(self.predictor.feature_names).to_numpy()
        usable = ~np.isnan(features).any(axis=1)
        up = np.full(len(bars), 0.5)
        if usable.any():
            up[usable] = self.predictor.predict_proba(features[usable])
        positions = (up > params.long_above).astype(np.int8)
        if mode is Mode.LONG_SHORT:
            positions -= (up < params.short_below).astype(np.int8)
        return flat_before(positions, self.warmup(params))
