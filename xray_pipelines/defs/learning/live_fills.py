"""`live_fills`: the runtime's trades as a pipeline asset.

The runtime records every order it decided (with its lineage: bundle, strategy, parameters, model
version, data version) and every fill it saw in its SQL journal. This asset snapshots those fills,
each with its order's lineage, into the lake (`LakeTable.LIVE_FILLS`, scoped to the market), so that
what the runtime traded is versioned data like any other: `training_data` weights the bars it traded,
the decay sensor judges the champion on its live record, and the UI shows counts and a preview.

A snapshot rather than an external asset: the training data's data version then names exactly the
fills it was built with, and the lake keeps them when the runtime's database is elsewhere. It refreshes
every hour by itself and with every run of the training job (its group), before `training_data`.
"""

import hashlib

import dagster as dg
import polars as pl

from xray_core.research.store import LakeTable
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown, table
from xray_pipelines.resources import MarketScope, RuntimeJournalResource

PREVIEW_ROWS = 20


@dg.asset(
    group_name=Group.LEARNING,
    kinds={"sql", "duckdb"},
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
)
def live_fills(
    context: dg.AssetExecutionContext, market: MarketScope, journal: RuntimeJournalResource
) -> dg.MaterializeResult:
    """Every fill in the runtime's order journal (XRAY_RUNTIME_DATABASE_URL) with the lineage of its
    order: trade time, decision bar, symbol, user, side, amount, price, fee, strategy, model version,
    bundle version. Empty until the runtime trades; training never waits for it."""
    frame = journal.fills()
    market.write(LakeTable.LIVE_FILLS, frame)
    digest = str(frame.hash_rows().sum()) if frame.height else "none"
    preview = table(frame.tail(PREVIEW_ROWS))
    by_source = (
        frame.group_by("strategy", "model_version")
        .agg(pl.len().alias("fills"), pl.col("symbol").n_unique().alias("symbols"))
        .sort("fills", descending=True)
    )
    context.log.info(f"{frame.height} fills of {frame['user_id'].n_unique()} users from the runtime journal")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(hashlib.sha256(digest.encode()).hexdigest()[:16]),
        metadata={
            "dagster/row_count": frame.height,
            "dagster/column_schema": preview.schema,
            "users": frame["user_id"].n_unique(),
            "symbols": frame["symbol"].n_unique(),
            "orders": frame["client_order_id"].n_unique(),
            "model_fills": frame.filter(pl.col("model_version").is_not_null()).height,
            "first_fill": str(frame["timestamp"].min()) if frame.height else "",
            "last_fill": str(frame["timestamp"].max()) if frame.height else "",
            "by_strategy": markdown(by_source),
            "preview": preview,
        },
    )
