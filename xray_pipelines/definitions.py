"""The Dagster code location: composes assets, checks, resources, jobs, schedules and sensors."""

import dagster as dg

from xray_core.settings import load_settings
from xray_pipelines.assets.backtests import backtests, filtered_symbols
from xray_pipelines.assets.candles import candles
from xray_pipelines.assets.correlation import market_correlation
from xray_pipelines.assets.features import features
from xray_pipelines.assets.markets import markets
from xray_pipelines.assets.news import news_sentiment
from xray_pipelines.assets.params import strategy_params
from xray_pipelines.assets.quality import candle_quality
from xray_pipelines.jobs import candles_job, features_job, markets_job, quality_job, research_job
from xray_pipelines.resources import build_resources
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
    ],
    jobs=[markets_job, candles_job, quality_job, features_job, research_job],
    schedules=[hourly_candles, daily_markets],
    sensors=[new_symbols],
    resources=build_resources(load_settings()),
)
