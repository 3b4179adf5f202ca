"""Sensors: backfill new symbols as soon as the universe grows."""

import dagster as dg

from xray_pipelines.assets.markets import markets
from xray_pipelines.jobs import candles_job
from xray_pipelines.partitions import SYMBOLS


@dg.asset_sensor(asset_key=markets.key, job=candles_job, default_status=dg.DefaultSensorStatus.RUNNING)
def new_symbols(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    """After `markets` adds partitions, ingest each symbol that has never been materialized
    (rather than waiting up to an hour for the schedule)."""
    materialized = context.instance.get_materialized_partitions(dg.AssetKey("candles"))
    fresh = [s for s in context.instance.get_dynamic_partitions(SYMBOLS) if s not in materialized]
    if not fresh:
        return dg.SkipReason("every symbol partition has candles already")
    return [
        dg.RunRequest(run_key=f"backfill:{symbol}:{asset_event.run_id}", partition_key=symbol)
        for symbol in fresh
    ]
