"""Schedules: the hourly incremental candle refresh and the daily universe refresh."""

import dagster as dg

from xray_pipelines.jobs import candles_job, markets_job
from xray_pipelines.partitions import SYMBOLS


@dg.schedule(
    job=candles_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_candles(context: dg.ScheduleEvaluationContext):
    """Five minutes past every hour, fetch the bars that closed since the last run, one run per
    symbol so that one symbol's failure never holds back the others."""
    scheduled = context.scheduled_execution_time.isoformat()
    symbols = context.instance.get_dynamic_partitions(SYMBOLS)
    if not symbols:
        return dg.SkipReason("no symbol partitions yet: materialize `markets` first")
    return [dg.RunRequest(run_key=f"{symbol}@{scheduled}", partition_key=symbol) for symbol in symbols]


daily_markets = dg.ScheduleDefinition(
    name="daily_markets",
    job=markets_job,
    cron_schedule="0 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh the universe daily: new listings get partitions, delistings lose them",
)
