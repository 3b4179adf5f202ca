"""`model_promotion`: the gate between a challenger and the champion, with lineage.

Runs after the model assets. For each registered model whose challenger has not been judged yet, the
gate (`xray_core.learning.gate`) compares its out-of-sample metrics with buy-and-hold and with the
champion's; a pass moves the `champion` alias and records the replaced version, the reason, and the
data version, code version and Dagster run. A refusal keeps the champion and says why. A model whose
training failed this time has no new challenger, so its champion simply stays."""

import dagster as dg
import polars as pl

from xray_core.learning.gate import GateConfig
from xray_pipelines.defs.learning.models import model_gbm, model_lstm, model_rl
from xray_pipelines.groups import Group
from xray_pipelines.metadata import markdown
from xray_pipelines.mlops.registry import CHALLENGER, CHAMPION, KINDS, MODEL_NAMES, by_alias, gate_challenger
from xray_pipelines.resources import ModelsResource


@dg.asset(group_name=Group.LEARNING, kinds={"mlflow"}, deps=[model_gbm, model_lstm, model_rl])
def model_promotion(context: dg.AssetExecutionContext, models: ModelsResource) -> dg.MaterializeResult:
    """Promote each challenger that beats buy-and-hold and the champion out of sample by
    XRAY_MODELS_PROMOTION_MARGIN (oos_sharpe); otherwise keep the champion, with the reason."""
    settings = models.settings()
    config = GateConfig(margin=settings.promotion_margin, min_trades=settings.min_oos_trades)
    client = models.tracking().client()
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
        decision = gate_challenger(client, kind, config, lineage, version=challenger.version)
        context.log.info(
            f"{name} v{challenger.version}: {'promoted' if decision.promote else 'kept champion'}"
            f" — {decision.reason}"
        )
        rows.append(
            {
                "model": name,
                "challenger": int(challenger.version),
                "promoted": decision.promote,
                "reason": decision.reason,
            }
        )
    champions = {name: by_alias(client, name, CHAMPION) for name in MODEL_NAMES.values()}
    frame = pl.DataFrame(
        rows, schema={"model": pl.String, "challenger": pl.Int64, "promoted": pl.Boolean, "reason": pl.String}
    )
    return dg.MaterializeResult(
        metadata={
            "promoted": int(frame["promoted"].sum()),
            "decisions": markdown(frame),
            "champions": dg.MetadataValue.json(
                {n: int(v.version) if v else None for n, v in champions.items()}
            ),
        }
    )
