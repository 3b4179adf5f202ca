"""A malformed bundle never stops the runtime: it is refused with its reason (on /health, logged once)
and the last good bundle keeps trading; with no good bundle at all, the service runs, trades nothing
and says why, until a good one is published."""

import json
import logging

import pytest
from service_support import MINUTE, add_users, fast_bundle, start_service

from xray_core.bundle import CURRENT, Bundle, publish
from xray_runtime.artefacts import ArtefactWatcher


def _good() -> dict:
    return json.loads(fast_bundle().to_json())


def _model_bundle() -> dict:
    bundle = Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": "BTC/USDT", "strategy": "model", "params": {"long_above": 0.6}, "group": 0}],
        risk_profiles={},
        models={"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm@champion", "version": 2}},
        feature_version="f", code_version="c", data_versions={"BTC/USDT": "d"},
    )
    return json.loads(bundle.to_json())


def _unloadable(uri):
    raise RuntimeError(f"registry at postgresql://mlflow:hunter2@db/mlflow is down, asked for {uri}")


MALFORMED = {
    "entries that are not objects": {"version": "v1", "symbols": [1, 2]},
    "no exchange": {k: v for k, v in _good().items() if k != "exchange"},
    "profiles that are not objects": _good() | {"risk_profiles": ["balanced"]},
    "a champion that will not load": _model_bundle(),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_bundle_is_refused_once_and_the_last_good_one_keeps_trading(tmp_path, caplog, case):
    publish(fast_bundle(), tmp_path)
    watcher = ArtefactWatcher(tmp_path, loader=_unloadable)
    assert watcher.poll() and watcher.refused is None
    good = watcher.current.version
    (tmp_path / CURRENT).write_text(json.dumps(MALFORMED[case]))
    with caplog.at_level(logging.ERROR, logger="xray_runtime.artefacts"):
        assert not watcher.poll()
        assert not watcher.poll()  # unchanged file: not read, not logged again
    assert watcher.current.version == good
    assert watcher.refused and "\n" not in watcher.refused
    assert "hunter2" not in watcher.refused  # a registry URL's password is not repeated
    assert [r.message for r in caplog.records] == ["bundle refused"]
    publish(fast_bundle(), tmp_path)  # the good one again: nothing refused any more
    assert not watcher.poll() and watcher.refused is None


async def test_a_first_start_on_a_malformed_bundle_runs_trades_nothing_and_says_why(runtime_env):
    settings, emulator, admin = runtime_env
    (settings.bundle_dir / CURRENT).write_text(json.dumps({"version": "v1", "symbols": [7]}))
    add_users(settings, admin, 2)
    service = await start_service(settings, emulator.base_url)  # does not crash
    try:
        reports = []
        for _ in range(3):
            admin.advance(MINUTE)
            reports.append(await service.step())
        health = service.health()
        publish(fast_bundle(), settings.bundle_dir)  # a good bundle arrives: trading starts
        for _ in range(12):
            admin.advance(MINUTE)
            reports.append(await service.step())
    finally:
        await service.stop()
    assert reports[:3] == [None, None, None]
    assert health["status"] == "degraded" and health["bundle"] is None
    assert "malformed" in health["bundle_refused"] and "symbols.0" in health["bundle_refused"]
    assert not health["trading"]
    assert any(r is not None and r.orders for r in reports[3:])
    assert service.health()["bundle"] == fast_bundle().version and service.health()["bundle_refused"] is None
