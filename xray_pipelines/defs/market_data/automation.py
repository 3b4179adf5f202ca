"""Market-data automation: the hourly incremental candle refresh, the daily universe refresh, and a
sensor that backfills new symbols as soon as the universe grows."""

import dagster as dg

from xray_pipelines.automation import RUNNING, TIMEZONE, cron_schedule
from xray_pipelines.defs.jobs import candles_job, markets_job
from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.defs.market_data.markets import markets
from xray_pipelines.partitions import SYMBOLS


@dg.schedule(job=candles_job, cron_schedule="5 * * * *", execution_timezone=TIMEZONE, default_status=RUNNING)
def hourly_candles(context: dg.ScheduleEvaluationContext):
    """Five minutes past every hour, fetch the bars that closed since the last run, one run per
    symbol so that one symbol's failure never holds back the others."""
    scheduled = context.scheduled_execution_time.isoformat()
    symbols = context.instance.get_dynamic_partitions(SYMBOLS)
    if not symbols:
        return dg.SkipReason("no symbol partitions yet: materialize `markets` first")
    return [dg.RunRequest(run_key=f"{symbol}@{scheduled}", partition_key=symbol) for symbol in symbols]


daily_markets = cron_schedule(
    "daily_markets",
    markets_job,
    "0 0 * * *",
    "Refresh the universe daily: new listings get partitions, delistings lose them",
)


@dg.asset_sensor(asset_key=markets.key, job=candles_job, default_status=dg.DefaultSensorStatus.RUNNING)
def new_symbols(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """After `markets` adds partitions, ingest each symbol that has never been materialized
    (rather than waiting up to an hour for the schedule)."""
    materialized = context.instance.get_materialized_partitions(candles.key)
    fresh = [s for s in context.instance.get_dynamic_partitions(SYMBOLS) if s not in materialized]
    if not fresh:
        return dg.SkipReason("every symbol partition has candles already")
    return [
        dg.RunRequest(run_key=f"backfill:{symbol}:{asset_event.run_id}", partition_key=symbol)
        for symbol in fresh
    ]
