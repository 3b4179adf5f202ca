"""`model_promotion` demotes a champion whose live record (the runtime's journalled fills, on bars whose
labels it never saw) falls below the lower bound of the Sharpe interval it was promoted with: its
predecessor is champion again, the reason is on the version and in the asset's metadata."""

import dagster as dg
import pytest
from live_support import (
    HELD_OUT,
    HORIZON,
    SYMBOLS,
    bar_ms,
    decided_trades,
    journal_resource,
    market_with,
    record_trades,
    synthetic_candles,
)

from xray_core.learning.dataset import FEATURES, build_training_frame
from xray_core.learning.models.registry import build_model
from xray_pipelines.defs.learning.promotion import model_promotion
from xray_pipelines.mlops.registry import CHAMPION, Tracking, log_model_version
from xray_pipelines.resources import ModelsResource, ResearchResource

PROMISED, LOWER_BOUND = 1.0, 0.5


@pytest.fixture
def world(tmp_path):
    """An MLflow store where version 2 of xray-gbm is champion (promoted over version 1) and promised an
    oos_sharpe of PROMISED with a lower confidence bound of LOWER_BOUND; trained on all but the last
    HELD_OUT bars of 60 days of candles."""
    candles = synthetic_candles(60)
    cut = {s: c.head(c.height - HELD_OUT) for s, c in candles.items()}
    frame = build_training_frame(cut)
    trained_until = str(int(max(bar_ms(c)[-1] for c in cut.values())))
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", f"file://{tmp_path / 'artifacts'}")
    tracking.activate()
    model = build_model("gbm").fit(frame)
    for _ in range(2):
        version = log_model_version(
            "gbm", model, params=model.params(),
            metrics={"oos_sharpe": PROMISED, "oos_sharpe_ci_low": LOWER_BOUND, "oos_trades": 40.0},
            tags={"xray.trained_until": trained_until, "xray.gate": "judged"},
            example=frame.select("timestamp", "symbol", *FEATURES).tail(64),
        )
    client = tracking.client()
    client.set_model_version_tag("xray-gbm", version.version, "xray.previous_champion", "1")
    client.set_registered_model_alias("xray-gbm", CHAMPION, version.version)
    return candles, market_with(tmp_path, candles), tracking


def _promotion(instance, world, tmp_path, good: bool):
    candles, market, tracking = world
    journal = journal_resource(tmp_path)
    record_trades(journal, decided_trades(candles, SYMBOLS, good=good), model_version="xray-gbm/2")
    resources = {
        "market": market, "research": ResearchResource(), "journal": journal,
        "models": ModelsResource(tracking_uri=tracking.tracking_uri, artifact_root=tracking.artifact_root,
                                 horizon_bars=HORIZON),
    }
    result = dg.materialize([model_promotion], instance=instance, resources=resources)
    assert result.success
    return result.asset_materializations_for_node("model_promotion")[0].metadata, tracking.client()


def test_a_champion_below_its_promised_lower_bound_is_demoted_to_its_predecessor(instance, world, tmp_path):
    metadata, client = _promotion(instance, world, tmp_path, good=False)
    assert metadata["demoted"].value == 1
    (done,) = metadata["demotions"].value
    assert done["model"] == "xray-gbm" and done["version"] == 2 and done["champion_now"] == "1"
    live = float(done["reason"].split("live Sharpe ")[1].split()[0])
    assert live < LOWER_BOUND
    assert f"on 4 symbols (min {HELD_OUT - HORIZON} new bars each" in done["reason"]
    assert str(client.get_model_version_by_alias("xray-gbm", CHAMPION).version) == "1"
    assert client.get_model_version("xray-gbm", "2").tags["xray.demotion_reason"] == done["reason"]
    assert metadata["champions"].value == {"xray-gbm": 1, "xray-lstm": None, "xray-rl": None}


def test_a_champion_that_keeps_its_promise_stays(instance, world, tmp_path):
    metadata, client = _promotion(instance, world, tmp_path, good=True)
    assert metadata["demoted"].value == 0
    assert str(client.get_model_version_by_alias("xray-gbm", CHAMPION).version) == "2"
    assert "xray.demotion_reason" not in client.get_model_version("xray-gbm", "2").tags
