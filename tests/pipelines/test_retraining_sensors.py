"""Retraining sensors (Dagster's sensor test utilities): new data and drift each ask for the
retraining job; nothing changed asks for nothing."""

import dagster as dg
import numpy as np
import polars as pl
import pytest

from xray_core.candles.quality import FeedAnomalies
from xray_core.candles.store import SeriesKey, UpsertResult
from xray_core.learning.dataset import build_training_frame
from xray_pipelines.defs.learning.retraining import retrain_on_drift, retrain_on_new_data
from xray_pipelines.resources import (
    ExchangeResource,
    LakeResource,
    MarketDataResource,
    MarketScope,
    ModelsResource,
)
from xray_sim.exchange.market import DAY_MS, SyntheticMarket

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "ADA/USDT"]
NEW_BARS = 120


def _candles(shock_recent: float = 1.0) -> dict[str, pl.DataFrame]:
    """60 days of hourly synthetic candles; the last NEW_BARS bars' moves scaled by `shock_recent`."""
    market = SyntheticMarket(seed=11, history_days=60)
    end = market.listed_from_ms + 60 * DAY_MS
    out = {}
    for symbol in SYMBOLS:
        bars = market.bars(symbol, "1h", market.listed_from_ms, end, end)
        close = bars.close.copy()
        if shock_recent != 1.0:
            steps = np.diff(np.log(close[-NEW_BARS - 1 :])) * shock_recent
            close[-NEW_BARS:] = close[-NEW_BARS - 1] * np.exp(np.cumsum(steps))
        scale = close / bars.close
        out[symbol] = pl.DataFrame(
            {
                "timestamp": pl.Series(bars.timestamp).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
                "open": bars.open * scale,
                "high": bars.high * scale,
                "low": bars.low * scale,
                "close": close,
                "volume": bars.volume,
            }
        )
    return out


def _resources(tmp_path, candles: dict[str, pl.DataFrame]) -> dict[str, object]:
    lake = LakeResource(duckdb_path=str(tmp_path / "xray.duckdb"), lake_dir=str(tmp_path / "lake"))
    store = lake.candles()
    for symbol, frame in candles.items():
        store.upsert(SeriesKey("mexc", symbol, "1h"), frame)
    verdicts = pl.DataFrame(
        {
            "symbol": SYMBOLS,
            "bars": [c.height for c in candles.values()],
            "verdict": ["good"] * len(SYMBOLS),
            "reason": ["all checks passed"] * len(SYMBOLS),
        }
    )
    store.save_quality("mexc", "1h", verdicts, 0)
    # The training data was built before the last NEW_BARS bars arrived.
    training = build_training_frame({s: c.head(c.height - NEW_BARS) for s, c in candles.items()})
    lake.research().write_series("training", "mexc", "1h", "all", training)
    return {
        "market": MarketScope(
            exchange=ExchangeResource(exchange_id="mexc"),
            lake=lake,
            market_data=MarketDataResource(timeframe="1h", history_days=60),
        ),
        "models": ModelsResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_root=f"file://{tmp_path / 'artifacts'}",
            retrain_new_bars=24,
            drift_psi=0.2,
        ),
    }


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("training_data"))
        yield instance


def _evaluate(sensor, instance, resources):
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    return list(result) if isinstance(result, list) else result


def _log_ingest(resources, bars_per_symbol: int) -> None:
    store = resources["market"].lake.candles()
    import time

    for symbol in SYMBOLS:
        store.log_ingest(
            SeriesKey("mexc", symbol, "1h"),
            int(time.time() * 1000) + 1000,
            bars_per_symbol,
            UpsertResult(bars_per_symbol, 0),
            FeedAnomalies(),
            None,
        )


def test_new_candles_ask_for_retraining(instance, tmp_path):
    resources = _resources(tmp_path, _candles())
    assert isinstance(_evaluate(retrain_on_new_data, instance, resources), dg.SkipReason)  # nothing new yet
    _log_ingest(resources, 10)
    skip = _evaluate(retrain_on_new_data, instance, resources)
    assert isinstance(skip, dg.SkipReason) and "10 new bars per symbol" in skip.skip_message
    _log_ingest(resources, 20)  # 30 per symbol now, 24 needed
    request = _evaluate(retrain_on_new_data, instance, resources)
    assert isinstance(request, dg.RunRequest)
    assert request.job_name in (None, "training_job") and request.run_key.startswith("new-data-")


def test_the_first_training_is_requested_once_there_are_good_candles(tmp_path):
    with dg.instance_for_test() as fresh:
        request = _evaluate(retrain_on_new_data, fresh, _resources(tmp_path, _candles()))
    assert isinstance(request, dg.RunRequest) and request.run_key == "first-training"


def test_drift_asks_for_retraining_and_a_steady_market_does_not(instance, tmp_path):
    steady = _evaluate(retrain_on_drift, instance, _resources(tmp_path / "steady", _candles()))
    assert isinstance(steady, dg.SkipReason) and steady.skip_message.startswith("no drift")
    shocked = _evaluate(
        retrain_on_drift, instance, _resources(tmp_path / "shocked", _candles(shock_recent=6.0))
    )
    assert isinstance(shocked, dg.RunRequest), shocked
    assert "realized_vol" in shocked.tags["xray/trigger"]
