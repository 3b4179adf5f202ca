"""`market_correlation`: how the good symbols move together — matrix, clusters, betas, lead-lag."""

import dagster as dg
import polars as pl

from xray_core.analysis.correlation import aligned_closes
from xray_core.analysis.correlation_plot import correlation_heatmap_png
from xray_core.analysis.correlation_report import correlation_report
from xray_core.research.store import LakeTable
from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.groups import Group
from xray_pipelines.metadata import image, markdown, table
from xray_pipelines.resources import MarketScope, ResearchResource

BENCHMARK = "BTC/USDT"
RECENT_WINDOW_BARS = 168  # a week of hourly bars


@dg.asset(
    group_name=Group.RESEARCH,
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"scipy", "duckdb"},
    deps=[candles, candle_quality],
)
def market_correlation(
    context: dg.AssetExecutionContext, market: MarketScope, research: ResearchResource
) -> dg.MaterializeResult:
    """Pearson correlations of log returns (full history and the last week), hierarchical clusters
    (XRAY_RESEARCH_CLUSTERS of them) on the correlation distance, beta and correlation to BTC/USDT, and
    which symbols lag BTC. Clusters feed
    `strategy_params` (one parameter set per cluster); the tables are stored for training features."""
    closes = aligned_closes({s.symbol: s.candles for s in market.good_series()})
    report = correlation_report(
        closes,
        benchmark=BENCHMARK,
        window=RECENT_WINDOW_BARS,
        max_lag=12,
        max_clusters=min(research.clusters, closes.width - 1),
    )
    for part, frame in report.to_tables().items():
        market.write(LakeTable.correlation(part), frame)
    for part, reason in report.skipped.items():
        context.log.warning(f"{part} skipped: {reason}")
    clusters = report.to_tables()["clusters"]
    return dg.MaterializeResult(
        metadata={
            "symbols": len(report.symbols),
            "clusters": len(set(report.clusters.values())),
            "heatmap": image(correlation_heatmap_png(report), "correlation heatmap"),
            "cluster_members": markdown(
                clusters.group_by("cluster", maintain_order=True).agg(
                    pl.col("symbol").str.join(", ").alias("symbols")
                )
            ),
            "betas_to_btc": table(report.betas) if report.betas is not None else "skipped",
            "lead_lag": table(report.lead_lag) if report.lead_lag is not None else "skipped",
            "excluded": dg.MetadataValue.json(dict(report.excluded)),
            "skipped": dg.MetadataValue.json(dict(report.skipped)),
        }
    )
