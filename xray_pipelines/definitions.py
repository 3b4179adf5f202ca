"""The Dagster code location: composes assets, checks, resources, jobs, schedules and sensors."""

import dagster as dg

from xray_core.settings import load_settings
from xray_pipelines.assets.backtests import backtests, filtered_symbols
from xray_pipelines.assets.candles import candles
from xray_pipelines.assets.correlation import market_correlation
from xray_pipelines.assets.features import features
from xray_pipelines.assets.handoff import promoted_bundle, risk_profiles
from xray_pipelines.assets.markets import markets
from xray_pipelines.assets.models import model_gbm, model_lstm, model_rl
from xray_pipelines.assets.news import news_sentiment
from xray_pipelines.assets.params import strategy_params
from xray_pipelines.assets.promotion import model_promotion
from xray_pipelines.assets.quality import candle_quality
from xray_pipelines.assets.training import training_data
from xray_pipelines.jobs import (
    candles_job,
    features_job,
    markets_job,
    quality_job,
    research_job,
    training_job,
)
from xray_pipelines.resources import build_resources
from xray_pipelines.retraining import (
    retrain_on_decay,
    retrain_on_drift,
    retrain_on_new_data,
    weekly_retraining,
)
from xray_pipelines.schedules import daily_markets, hourly_candles
from xray_pipelines.sensors import new_symbols

defs = dg.Definitions(
    assets=[
        markets,
        candles,
        candle_quality,
        features,
        backtests,
        filtered_symbols,
        market_correlation,
        news_sentiment,
        strategy_params,
        training_data,
        model_gbm,
        model_lstm,
        model_rl,
        model_promotion,
        risk_profiles,
        promoted_bundle,
    ],
    jobs=[markets_job, candles_job, quality_job, features_job, research_job, training_job],
    schedules=[hourly_candles, daily_markets, weekly_retraining],
    sensors=[new_symbols, retrain_on_new_data, retrain_on_drift, retrain_on_decay],
    resources=build_resources(load_settings()),
)
