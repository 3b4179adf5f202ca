"""`shadow_records`: the runtime's shadow books as a pipeline asset.

The runtime keeps a paper book for every challenger the bundle lists (and every champion, to pair them
with) on the very bars it trades, recorded per bar in its journal (`shadow_bars`: position and return
net of the research costs; no order is ever made from them). This asset snapshots those rows into the
lake (`LakeTable.SHADOW_BARS`, scoped to the market), so the gate reads each model's live
out-of-sample record as versioned data (`xray_core.learning.shadow_record.shadow_returns` and
`paired_returns` turn it into series), and the UI shows each book's bars and net return.

Like `live_fills`: a snapshot, refreshed every hour by itself and with every run of the training job.
"""

import hashlib

import dagster as dg
import polars as pl

from xray_core.learning.shadow_record import book_summary
from xray_core.research.store import LakeTable
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.resources import MarketScope, RuntimeJournalResource


@dg.asset(
    group_name=Group.LEARNING,
    kinds={"sql", "duckdb"},
    automation_condition=dg.AutomationCondition.on_cron("0 * * * *"),
)
def shadow_records(
    context: dg.AssetExecutionContext, market: MarketScope, journal: RuntimeJournalResource
) -> dg.MaterializeResult:
    """Every bar of the runtime's shadow books (XRAY_RUNTIME_DATABASE_URL): model, version, role,
    symbol, bar, position and the book's return net of the research costs. Empty until the runtime
    shadow-trades a bundle with models; the gate then pairs a challenger with the champion on it."""
    frame = journal.shadow_bars()
    market.write(LakeTable.SHADOW_BARS, frame)
    digest = str(frame.hash_rows().sum()) if frame.height else "none"
    summary = book_summary(frame).with_columns(pl.col("net_return").round(4))
    context.log.info(f"{frame.height} shadow bars of {summary.height} books from the runtime journal")
    return dg.MaterializeResult(
        data_version=dg.DataVersion(hashlib.sha256(digest.encode()).hexdigest()[:16]),
        metadata={
            "dagster/row_count": frame.height,
            "books": summary.height,
            "models": frame.select("model", "version").n_unique() if frame.height else 0,
            "last_bar": str(frame["bar"].max()) if frame.height else "",
            "by_book": markdown(summary.drop("first_bar")),
        },
    )
