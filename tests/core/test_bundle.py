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


def _json(bundle: Bundle) -> dict:
    import json

    return json.loads(bundle.to_json())


def _resealed(data: dict) -> dict:
    """`data` with its version recomputed, as `publish` would have written it."""
    from xray_core.bundle import VOLATILE, content_version

    content = {k: v for k, v in data.items() if k not in (*VOLATILE, "version")}
    return data | {"version": content_version(content)}


def _with(**changes) -> dict:
    return _resealed(_json(_bundle()) | changes)


def _sized(**sizing) -> dict:
    return _with(risk_profiles={"balanced": {"BTC/USDT": SIZING | sizing}})


ENTRY = {"symbol": "BTC/USDT", "strategy": "sma_cross", "params": {"fast": 10, "slow": 50}, "group": 1}
SIZING = {"leverage": 2.0, "trade_percentage": 0.1, "margin_multiplier": 1.5}
MALFORMED = {
    "no symbols": (_with(symbols=[]), "symbols"),
    "symbols not a list": (_with(symbols={"BTC/USDT": "sma_cross"}), "symbols"),
    "an entry not an object": (_with(symbols=["BTC/USDT"]), "symbols.0"),
    "an entry without a strategy": (_with(symbols=[{"symbol": "BTC/USDT"}]), "symbols.0.strategy"),
    "a typo in a field": (_with(symbols=[ENTRY | {"parms": {}}]), "parms"),
    "a symbol that is not BASE/QUOTE": (_with(symbols=[ENTRY | {"symbol": "btcusdt"}]), "symbols.0.symbol"),
    "a symbol twice": (_with(symbols=[ENTRY, ENTRY]), "BTC/USDT"),
    "an unknown strategy": (_with(symbols=[ENTRY | {"strategy": "moon"}]), "unknown strategy 'moon'"),
    "parameters the strategy refuses": (_with(symbols=[ENTRY | {"params": {"fast": 50, "slow": 10}}]),
                                        "sma_cross"),
    "an unknown parameter": (_with(symbols=[ENTRY | {"params": {"window": 3}}]), "window"),
    "an unknown timeframe": (_with(timeframe="7m"), "timeframe"),
    "an unknown risk profile": (_with(risk_profiles={"yolo": {"BTC/USDT": SIZING}}), "yolo"),
    "sizing for a symbol not traded": (_with(risk_profiles={"balanced": {"ETH/USDT": SIZING}}), "ETH/USDT"),
    "a sizing that is not a number": (_sized(leverage="x"), "leverage"),
    "a negative trade share": (_sized(trade_percentage=-0.1), "trade_percentage"),
    "a model without a URI": (_with(models={"gbm": {"name": "xray-gbm", "version": 3}}), "models.gbm.uri"),
    "a model version 0": (_with(models={"gbm": {"name": "n", "uri": "m:/n", "version": 0}}), "version"),
    "a blank data version": (_with(data_versions={"BTC/USDT": ""}), "data_versions.BTC/USDT"),
    "a blank code version": (_with(code_version=" "), "code_version"),
    "a challenger without a version": (_with(challengers={"gbm": {"name": "xray-gbm", "uri": "m:/x/2"}}),
                                       "challengers.gbm.version"),
    "a negative fee": (_with(costs={"fee": -0.001, "slippage": 0.0}), "costs.fee"),
    "costs without slippage": (_with(costs={"fee": 0.001}), "costs.slippage"),
    "an edited bundle": (_json(_bundle()) | {"timeframe": "4h"}, "does not match its content"),
    "not an object": ([1, 2], "not a JSON object"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_bundle_is_refused_with_one_line_naming_what_is_wrong(case):
    from xray_core.bundle import parse

    data, named = MALFORMED[case]
    with pytest.raises(DataError) as refused:
        parse(data)
    message = str(refused.value)
    assert named in message and "\n" not in message and refused.value.hint, message


def test_a_published_bundle_passes_the_schema(tmp_path):
    from xray_core.bundle import parse

    publish(_bundle(), tmp_path)
    spec = parse(read(tmp_path / CURRENT))
    assert spec.version == _bundle().version and spec.symbol_names == ["BTC/USDT"]
    assert spec.risk_profiles["balanced"]["BTC/USDT"].leverage == 2.0 and spec.models["gbm"].version == 3
    with pytest.raises(DataError, match="leverage"):
        parse(_sized(leverage=float("inf")))


def test_challengers_and_research_costs_travel_in_the_bundle(tmp_path):
    """The runtime shadow-trades the challengers the bundle lists, at the costs it carries; both are
    content, so a new challenger is a new bundle version."""
    from xray_core.bundle import parse

    challenger = {"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm/4", "version": 4}}
    bundle = _bundle(challengers=challenger, costs={"fee": 0.001, "slippage": 0.0005})
    assert bundle.version not in {_bundle().version, _bundle(challengers=challenger).version}
    publish(bundle, tmp_path)
    spec = parse(read(tmp_path / CURRENT))
    assert spec.challengers["gbm"].version == 4 and spec.challengers["gbm"].uri == "models:/xray-gbm/4"
    assert (spec.costs.fee, spec.costs.slippage) == (0.001, 0.0005)
    assert parse(_json(_bundle())).costs is None and parse(_json(_bundle())).challengers == {}
