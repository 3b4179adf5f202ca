"""Jobs: one per asset group, launched by schedules, sensors and the CLI.

Each selects a whole group, so an asset added to a group is launched with it."""

import dagster as dg

from xray_pipelines.groups import Group

# Run tag the production instance (dagster.postgres.yaml) limits runs by: one research run and one
# training run at a time, however many are queued (each is heavy and rewrites the same tables).
WORKLOAD_TAG = "xray/workload"


def group_job(name: str, group: str, description: str, workload: str = "light"):
    """The job that runs every asset of `group` (whatever the group holds when the code loads)."""
    return dg.define_asset_job(name, selection=dg.AssetSelection.groups(group), description=description,
                               run_tags={WORKLOAD_TAG: workload})


markets_job = group_job(
    "markets_job", Group.UNIVERSE, "Refresh the tradable universe and the symbol partitions"
)
candles_job = group_job("candles_job", Group.CANDLES, "Ingest new bars for one symbol and check them")
quality_job = group_job("quality_job", Group.QUALITY, "Turn the latest checks into one verdict per symbol")
features_job = group_job("features_job", Group.FEATURES, "Indicator features for one symbol")
research_job = group_job(
    "research_job",
    Group.RESEARCH,
    "Backtest every good symbol, filter, correlate, read the news, optimise parameters",
    workload="research",
)
training_job = group_job(
    "training_job",
    Group.LEARNING,
    "Rebuild the training data, train and evaluate every model, gate them, publish the bundle",
    workload="training",
)
