"""The promoted bundle: content-versioned, published atomically, read back with clear errors."""

import pytest

from xray_core.bundle import CURRENT, Bundle, publish, read
from xray_core.errors import DataError


def _bundle(**changes) -> Bundle:
    values = {
        "exchange": "mexc",
        "timeframe": "1h",
        "symbols": [
            {
                "symbol": "BTC/USDT",
                "strategy": "sma_cross",
                "params": {"fast": 10, "slow": 50},
                "group": "cluster-1",
            }
        ],
        "risk_profiles": {
            "balanced": {"BTC/USDT": {"leverage": 2.0, "trade_percentage": 0.1, "margin_multiplier": 1.5}}
        },
        "models": {"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm@champion", "version": 3}},
        "feature_version": "f1",
        "code_version": "c1",
        "data_versions": {"BTC/USDT": "d1"},
    }
    return Bundle(**(values | changes))


def test_the_version_follows_the_content_not_the_run(tmp_path):
    assert _bundle(dagster_run_id="a").version == _bundle(dagster_run_id="b").version
    assert _bundle().version != _bundle(data_versions={"BTC/USDT": "d2"}).version


def test_publishing_points_current_at_the_new_version_once(tmp_path):
    path, changed = publish(_bundle(), tmp_path)
    assert changed and path.exists()
    current = read(tmp_path / CURRENT)
    assert current["version"] == _bundle().version
    assert current["symbols"][0]["params"] == {"fast": 10, "slow": 50}
    assert publish(_bundle(dagster_run_id="again"), tmp_path)[1] is False  # unchanged: nothing to swap
    newer = _bundle(code_version="c2")
    assert publish(newer, tmp_path)[1] and read(tmp_path / CURRENT)["version"] == newer.version
    assert not list(tmp_path.glob("*.partial"))


def test_a_missing_or_corrupt_bundle_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no promoted bundle"):
        read(tmp_path / CURRENT)
    (tmp_path / CURRENT).write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read(tmp_path / CURRENT)
