"""`model_promotion`: demote champions that broke their promise, then gate each new challenger.

Runs after the model assets. First, each champion's live record (`retraining.live_check`: its fills
where the runtime traded it, its replayed signals elsewhere, on bars whose labels it never saw) is
compared with the lower bound of the Sharpe confidence interval the gate measured when it was
promoted; below it, the champion is demoted — its predecessor is champion again, or none is (flat) —
with the reason on the version (`xray.demotion_reason`) and in this asset's metadata.

Then, for each registered model whose challenger has not been judged yet, the gate
(`xray_core.learning.gate`) reads its paired evidence: the shadow books' record when the runtime has
kept one for `XRAY_MODELS_MIN_SHADOW_BARS` bars, else the walk-forward folds logged with it. A pass
moves the `champion` alias with lineage; either way the gate's record is logged on the version."""

from typing import Any

import dagster as dg
import polars as pl

from xray_core.learning.skill import PairedReturns, shadow_pair
from xray_core.timeframes import TIMEFRAME_MS
from xray_pipelines.defs.learning.models import model_gbm, model_lstm, model_rl
from xray_pipelines.defs.learning.retraining import live_check
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.mlops.registry import (
    CHALLENGER,
    CHAMPION,
    KINDS,
    MODEL_NAMES,
    by_alias,
    demote,
    gate_challenger,
    gate_config,
)
from xray_pipelines.resources import MarketScope, ModelsResource, ResearchResource, RuntimeJournalResource

YEAR_MS = 365 * 24 * 3_600_000


@dg.asset(group_name=Group.LEARNING, kinds={"mlflow"}, deps=[model_gbm, model_lstm, model_rl])
def model_promotion(
    context: dg.AssetExecutionContext,
    models: ModelsResource,
    market: MarketScope,
    research: ResearchResource,
    journal: RuntimeJournalResource,
) -> dg.MaterializeResult:
    """Demote champions whose live record fell below their promised lower bound; promote each
    challenger whose paired Sharpe gain is significant (block bootstrap, deflated for every trial),
    beats flat and buy-and-hold, stays positive at 2x costs and trades every symbol enough."""
    settings = models.settings()
    config = gate_config(settings)
    client = models.tracking().client()
    candles = {s.symbol: s.candles for s in market.good_series()}
    demotions = _demote_broken_promises(context, client, market, candles, journal, settings, research)
    positions = journal.shadow_positions()  # the runtime's shadow books, champions' included
    costs = research.settings().fee + research.settings().slippage
    per_year = YEAR_MS / TIMEFRAME_MS[market.timeframe]
    lineage = {"xray.dagster_run_id": context.run.run_id}
    rows: list[dict[str, object]] = []
    for kind in KINDS:
        name = MODEL_NAMES[kind]
        challenger = by_alias(client, name, CHALLENGER)
        if challenger is None or challenger.tags.get("xray.gate"):
            reason = "no new challenger" if challenger else "never trained"
            rows.append({"model": name, "challenger": None, "promoted": False, "reason": reason})
            continue
        for key in ("xray.data_version", "xray.code_version"):
            if key in challenger.tags:
                lineage[key] = challenger.tags[key]
        incumbent = by_alias(client, name, CHAMPION)
        shadow: PairedReturns | None = None
        if positions is not None and positions.height:
            shadow = shadow_pair(
                positions, candles, f"{name}/{challenger.version}",
                f"{name}/{incumbent.version}" if incumbent else None, cost=costs, bars_per_year=per_year,
            )
        record = gate_challenger(client, kind, config, lineage, version=challenger.version, shadow=shadow)
        verdict = "promoted" if record.promote else "kept champion"
        context.log.info(f"{name} v{challenger.version}: {verdict} — {record.reason}")
        rows.append({"model": name, "challenger": int(challenger.version), "promoted": record.promote,
                     "p_value": record.p_value, "trials": record.trials, "reason": record.reason})
    champions = {name: by_alias(client, name, CHAMPION) for name in MODEL_NAMES.values()}
    frame = pl.DataFrame(rows, schema={"model": pl.String, "challenger": pl.Int64, "promoted": pl.Boolean,
                                       "p_value": pl.Float64, "trials": pl.Int64, "reason": pl.String})
    return dg.MaterializeResult(
        metadata={
            "promoted": int(frame["promoted"].sum()),
            "decisions": markdown(frame),
            "demoted": len(demotions),
            "demotions": dg.MetadataValue.json(demotions),
            "champions": dg.MetadataValue.json(
                {n: int(v.version) if v else None for n, v in champions.items()}
            ),
        }
    )


def _demote_broken_promises(
    context: dg.AssetExecutionContext,
    client: Any,
    market: MarketScope,
    candles: dict[str, pl.DataFrame],
    journal: RuntimeJournalResource,
    settings: Any,
    research: ResearchResource,
) -> list[dict[str, object]]:
    """Demote every champion whose live record is below its promised lower bound; what was done, why."""
    fills = journal.fills()
    done: list[dict[str, object]] = []
    for name in MODEL_NAMES.values():
        check = live_check(client, name, market, candles, fills, settings, research)
        if check is None or not check.broke_promise():
            continue
        reason = f"demoted: {check.note} — below the promised lower bound"
        now = demote(client, name, reason)
        context.log.warning(f"{reason}; champion now {f'v{now}' if now else 'none (flat)'}")
        done.append({"model": name, "version": int(check.version), "champion_now": now, "reason": reason})
    return done
