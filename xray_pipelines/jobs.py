"""Jobs: named selections of assets that schedules and sensors launch."""

import dagster as dg

from xray_pipelines.assets.candles import candles
from xray_pipelines.assets.markets import markets
from xray_pipelines.assets.quality import candle_quality

markets_job = dg.define_asset_job(
    "markets_job", selection=[markets], description="Refresh the tradable universe and the symbol partitions"
)
candles_job = dg.define_asset_job(
    "candles_job",
    selection=[candles],
    description="Ingest new bars for one symbol and check them",
)
quality_job = dg.define_asset_job(
    "quality_job",
    selection=[candle_quality],
    description="Turn the latest checks into one verdict per symbol",
)
features_job = dg.define_asset_job(
    "features_job",
    selection=dg.AssetSelection.assets("features"),
    description="Indicator features for one symbol",
)
research_job = dg.define_asset_job(
    "research_job",
    selection=dg.AssetSelection.assets(
        "backtests",
        "filtered_symbols",
        "market_correlation",
        "news_sentiment",
        "strategy_params",
        "risk_profiles",
    ),
    description="Backtest every good symbol, filter, correlate, read the news, optimise parameters",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(
        "training_data", "model_gbm", "model_lstm", "model_rl", "model_promotion", "promoted_bundle"
    ),
    description="Rebuild the training data, train and evaluate every model, gate them, publish the bundle",
)
