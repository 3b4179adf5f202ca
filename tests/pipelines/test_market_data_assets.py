"""markets → candles[symbol] → candle_quality on a Dagster instance, against the emulator."""

import dagster as dg
import polars as pl

from xray_pipelines.defs.market_data.candles import candles
from xray_pipelines.defs.market_data.markets import markets
from xray_pipelines.defs.market_data.quality import candle_quality
from xray_pipelines.partitions import SYMBOLS

CHOSEN = ["BTC/USDT", "ETH/USDT", "TGT/USDT", "SRM/USDT"]


def _checks_by_name(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_pipeline_flags_broken_symbols_and_keeps_the_others(instance, resources):
    assert dg.materialize([markets], instance=instance, resources=resources).success
    store = resources["market"].lake.candles()
    universe = store.markets("mexc").filter(pl.col("symbol").is_in(CHOSEN))
    srm = universe.filter(pl.col("symbol") == "SRM/USDT").row(0, named=True)
    assert (
        not srm["kept"] and srm["reason"] == "not active for trading on the exchange"
    )  # its listing stopped
    assert sorted(instance.get_dynamic_partitions(SYMBOLS)) == ["BTC/USDT", "ETH/USDT", "TGT/USDT"]

    checks = {}
    for symbol in instance.get_dynamic_partitions(SYMBOLS):
        result = dg.materialize([candles], instance=instance, resources=resources, partition_key=symbol)
        assert result.success, symbol  # broken data never fails the run
        checks[symbol] = _checks_by_name(result)
    assert all(checks["BTC/USDT"].values())
    assert checks["TGT/USDT"]["gaps_within_tolerance"] is False
    assert checks["TGT/USDT"]["positive_prices"] is False

    quality = dg.materialize([candle_quality], instance=instance, resources=resources)
    assert quality.success
    verdicts = store.quality("mexc", "1h")
    by_symbol = dict(zip(verdicts["symbol"], verdicts["verdict"], strict=True))
    assert by_symbol == {"BTC/USDT": "good", "ETH/USDT": "good", "TGT/USDT": "bad"}
    assert store.good_symbols("mexc", "1h") == ["BTC/USDT", "ETH/USDT"]
    reasons = verdicts.filter(pl.col("verdict") == "bad")["reason"].to_list()
    assert all(reasons)
    metadata = quality.asset_materializations_for_node("candle_quality")[0].metadata
    assert metadata["good"].value == 2 and metadata["bad"].value == 1


def test_rematerializing_unchanged_candles_keeps_the_data_version(instance, resources):
    dg.materialize([markets], instance=instance, resources=resources)
    first = dg.materialize([candles], instance=instance, resources=resources, partition_key="ETH/USDT")
    second = dg.materialize([candles], instance=instance, resources=resources, partition_key="ETH/USDT")
    version = [
        r.asset_materializations_for_node("candles")[0].tags["dagster/data_version"] for r in (first, second)
    ]
    assert version[0] == version[1]


def test_an_unknown_symbol_fails_only_its_partition(instance, resources):
    dg.materialize([markets], instance=instance, resources=resources)
    instance.add_dynamic_partitions(SYMBOLS, ["GONE/USDT"])
    result = dg.materialize(
        [candles], instance=instance, resources=resources, partition_key="GONE/USDT", raise_on_error=False
    )
    assert not result.success
    ok = dg.materialize([candles], instance=instance, resources=resources, partition_key="BTC/USDT")
    assert ok.success
    dg.materialize([candle_quality], instance=instance, resources=resources)
