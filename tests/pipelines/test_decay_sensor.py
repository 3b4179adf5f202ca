"""`retrain_on_decay`: the champion judged on its live record — fills the runtime journalled (written
with the runtime's own API), its own signals replayed where it did not trade — per symbol, only on bars
after trained_until + horizon, at the research costs."""

import dagster as dg
import numpy as np
import polars as pl
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

from xray_core.learning.dataset import FEATURES, build_training_frame, live_features
from xray_core.learning.models.registry import build_model
from xray_pipelines.defs.learning.retraining import _replay, retrain_on_decay
from xray_pipelines.mlops.registry import CHAMPION, Tracking, log_model_version
from xray_pipelines.resources import ModelsResource, ResearchResource

PROMISED = 1.0  # the champion's logged out-of-sample Sharpe


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """60 days of candles in a lake, and an MLflow store whose gbm champion (version 1) was trained on
    all but the last HELD_OUT bars and promised an oos_sharpe of PROMISED."""
    root = tmp_path_factory.mktemp("decay")
    candles = synthetic_candles(60)
    cut = {s: c.head(c.height - HELD_OUT) for s, c in candles.items()}
    frame = build_training_frame(cut)
    trained_until = int(max(bar_ms(c)[-1] for c in cut.values()))
    tracking = Tracking(f"sqlite:///{root / 'mlflow.db'}", f"file://{root / 'artifacts'}")
    tracking.activate()
    model = build_model("gbm").fit(frame)
    version = log_model_version(
        "gbm", model, params=model.params(), metrics={"oos_sharpe": PROMISED, "oos_trades": 40.0},
        tags={"xray.trained_until": str(trained_until)},
        example=frame.select("timestamp", "symbol", *FEATURES).tail(64),
    )
    tracking.client().set_registered_model_alias("xray-gbm", CHAMPION, version.version)
    return root, candles, market_with(root, candles), tracking


def _evaluate(instance, world, tmp_path, trades, research=None, model_version="xray-gbm/1", **settings):
    _, _, market, tracking = world
    journal = journal_resource(tmp_path)
    if trades:
        record_trades(journal, trades, model_version=model_version)
    resources = {
        "market": market,
        "models": ModelsResource(tracking_uri=tracking.tracking_uri, artifact_root=tracking.artifact_root,
                                 horizon_bars=HORIZON, **settings),
        "research": research or ResearchResource(),
        "journal": journal,
    }
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        return retrain_on_decay(context)


def test_a_champion_whose_live_record_decays_asks_for_retraining(instance, world, tmp_path):
    _, candles, _, _ = world
    request = _evaluate(instance, world, tmp_path, decided_trades(candles, SYMBOLS, good=False))
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key == "decay-xray-gbm-1"
    reason = request.tags["xray/trigger"]
    # Per symbol, only the bars after trained_until + horizon, all of them from the journal.
    fresh = HELD_OUT - HORIZON
    assert f"on 4 symbols (min {fresh} new bars each; bars: {4 * fresh} live)" in reason, reason
    live = float(reason.split("live Sharpe ")[1].split()[0])
    assert live < PROMISED - 1.0


def test_a_healthy_champion_is_kept_and_costs_are_the_research_costs(instance, world, tmp_path):
    _, candles, _, _ = world
    trades = decided_trades(candles, SYMBOLS, good=True)
    skip = _evaluate(instance, world, tmp_path / "cheap", trades)
    assert isinstance(skip, dg.SkipReason), skip
    assert "xray-gbm v1: live Sharpe" in skip.skip_message
    assert float(skip.skip_message.split("live Sharpe ")[1].split()[0]) > PROMISED
    # The same trades at ruinous research costs (5% fee and 5% slippage a fill) have no edge left.
    costly = _evaluate(instance, world, tmp_path / "costly", trades,
                       research=ResearchResource(fee=0.05, slippage=0.05))
    assert isinstance(costly, dg.RunRequest), costly


def test_too_few_new_bars_per_symbol_skip_with_the_reason(instance, world, tmp_path):
    _, candles, _, _ = world
    trades = decided_trades(candles, SYMBOLS, good=False)
    skip = _evaluate(instance, world, tmp_path, trades, decay_min_bars=400)
    assert isinstance(skip, dg.SkipReason)
    assert "too few new bars per symbol" in skip.skip_message
    assert f"at most {HELD_OUT - HORIZON}, 400 needed" in skip.skip_message


def test_symbols_the_champion_did_not_trade_are_replayed_from_the_model(instance, world, tmp_path):
    _, candles, _, _ = world
    result = _evaluate(instance, world, tmp_path, decided_trades(candles, ["BTC/USDT"], good=False))
    message = result.tags["xray/trigger"] if isinstance(result, dg.RunRequest) else result.skip_message
    fresh = HELD_OUT - HORIZON
    assert f"bars: {fresh} live, {3 * fresh} replayed" in message, message
    live = float(message.split("live Sharpe ")[1].split()[0])
    assert np.isfinite(live)
    # Fills of another model version (or of rule strategies) are not this champion's record.
    bad = decided_trades(candles, SYMBOLS, good=False)
    other = _evaluate(instance, world, tmp_path / "other", bad, model_version="xray-gbm/7")
    rules = _evaluate(instance, world, tmp_path / "rules", bad, model_version=None)
    other_message = other.tags["xray/trigger"] if isinstance(other, dg.RunRequest) else other.skip_message
    assert f"bars: {4 * fresh} replayed" in other_message, other_message
    rules_message = rules.tags["xray/trigger"] if isinstance(rules, dg.RunRequest) else rules.skip_message
    assert f"bars: {4 * fresh} replayed" in rules_message, rules_message


def test_the_replay_scores_the_bars_asked_for_not_the_latest_ones(world):
    """Bars before the runtime first traded a symbol come before its live ones: the replay must give the
    model's P(up) for exactly those bars."""
    import mlflow

    _, candles, market, tracking = world
    tracking.activate()
    stamps = bar_ms(candles["ETH/USDT"])
    early = stamps[-HELD_OUT:-HELD_OUT + 50]  # 50 bars, then 350 later ones that are not asked for
    got = _replay(market, candles, "models:/xray-gbm/1")({"ETH/USDT": early})["ETH/USDT"]
    frame = live_features(candles, last=HELD_OUT).filter(pl.col("symbol") == "ETH/USDT")
    frame = frame.filter(pl.col("timestamp").dt.epoch("ms").is_in(early.tolist()))
    naive = frame.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas()
    expected = np.asarray(mlflow.pyfunc.load_model("models:/xray-gbm/1").predict(naive), dtype=np.float64)
    assert frame.height == early.size
    np.testing.assert_allclose(got, expected.reshape(-1))
    assert np.unique(got).size > 1  # scored, not filled in as flat


def test_a_champion_below_its_promised_lower_bound_asks_for_retraining(instance, world, tmp_path):
    """Even when the live Sharpe is within XRAY_MODELS_DECAY_SHARPE_DROP of the promise, falling below
    the lower bound of the interval the gate measured (`oos_sharpe_ci_low`) is decay."""
    _, candles, _, tracking = world
    client = tracking.client()
    run_id = client.get_model_version("xray-gbm", "1").run_id
    bad = decided_trades(candles, SYMBOLS, good=False)
    lenient = _evaluate(instance, world, tmp_path / "lenient", bad, decay_sharpe_drop=100.0)
    assert isinstance(lenient, dg.SkipReason), lenient  # no lower bound logged: the drop alone decides
    client.log_metric(run_id, "oos_sharpe_ci_low", 0.5)
    request = _evaluate(instance, world, tmp_path / "bound", bad, decay_sharpe_drop=100.0)
    assert isinstance(request, dg.RunRequest), request
    assert "(lower bound 0.50)" in request.tags["xray/trigger"]
