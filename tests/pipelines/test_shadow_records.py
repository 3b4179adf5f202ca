"""`shadow_records`: the runtime's shadow books (written here by the runtime's own `ShadowBooks`, on
SQLite and Postgres) read by the pipelines through the journal resource, snapshot into the lake, and
turned into the per-book series the gate pairs."""

import os
import uuid

import dagster as dg
import numpy as np
import polars as pl
import psycopg
import pytest
from live_support import journal_resource, market_with, synthetic_candles

from xray_core.candles.bars import Bars
from xray_core.learning.shadow_record import SHADOW_SCHEMA, paired_returns, shadow_returns
from xray_core.learning.skill import shadow_pair
from xray_core.research.store import LakeTable
from xray_core.strategies import get_strategy
from xray_pipelines.defs.learning.shadow_records import shadow_records
from xray_pipelines.journal import read_shadow_bars
from xray_runtime.artefacts import Promoted, ShadowModel, SymbolPlan
from xray_runtime.db import connect
from xray_runtime.market import SymbolBars
from xray_runtime.shadow import ShadowBooks

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SYMBOLS = ("BTC/USDT", "ETH/USDT")


class Momentum:
    feature_names = ("log_return",)

    def __init__(self, shift: float) -> None:
        self.shift = shift

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.clip(0.5 + 100.0 * frame["log_return"].to_numpy() + self.shift, 0.0, 1.0)


def _promoted() -> Promoted:
    rule = get_strategy("sma_cross")
    plans = {s: SymbolPlan(s, rule, rule.params({"fast": 5, "slow": 20}), "{}", "d") for s in SYMBOLS}
    shadow = {("xray-gbm", 3): ShadowModel("gbm", "xray-gbm", 3, "champion", Momentum(0.0)),
              ("xray-gbm", 4): ShadowModel("gbm", "xray-gbm", 4, "challenger", Momentum(0.04))}
    return Promoted(version="b1", exchange="mexc", timeframe="1h", plans=plans, risk_profiles={}, models={},
                    shadow=shadow, costs=(0.001, 0.0005))


def _shadow_trade(database_url: str, candles: dict[str, pl.DataFrame], ticks: range) -> int:
    """The runtime's books over the closed bars `ticks` (indices of the candles' last bar)."""
    books, promoted, rows = ShadowBooks(connect(database_url)), _promoted(), 0
    for last in ticks:
        data = {s: SymbolBars(s, Bars.from_frame(candles[s][last - 399:last + 1]), True) for s in SYMBOLS}
        rows += books.record(promoted, data).rows
    books.engine.dispose()
    return rows


def test_shadow_records_snapshots_the_books_into_the_lake(tmp_path, instance):
    candles = synthetic_candles(40)
    journal = journal_resource(tmp_path)
    resources = {"market": market_with(tmp_path, candles), "journal": journal}
    empty = dg.materialize([shadow_records], instance=instance, resources=resources, run_config=QUIET)
    assert empty.asset_materializations_for_node("shadow_records")[0].metadata["books"].value == 0
    recorded = _shadow_trade(journal.database_url, candles, range(500, 530))
    result = dg.materialize([shadow_records], instance=instance, resources=resources, run_config=QUIET)
    event = result.asset_materializations_for_node("shadow_records")[0]
    assert event.metadata["dagster/row_count"].value == recorded == 2 * 2 * 30
    assert event.metadata["books"].value == 4 and "xray-gbm" in event.metadata["by_book"].value
    stored = resources["market"].read(LakeTable.SHADOW_BARS)
    assert stored.columns == list(SHADOW_SCHEMA) and stored.height == recorded
    books = shadow_returns(stored)
    assert {len(series) for series in books.values()} == {30}
    paired = paired_returns(stored, challenger=("xray-gbm", 4), champion=("xray-gbm", 3))
    assert sorted(paired) == list(SYMBOLS)
    for symbol, pair in paired.items():
        stamps = candles[symbol]["timestamp"].dt.epoch("ms").to_numpy()[500:530]
        assert pair.bar_ms.tolist() == stamps.tolist()
        assert not np.array_equal(pair.challenger, pair.champion)  # two models, two books



def test_the_gate_prices_the_runtimes_shadow_books(tmp_path):
    """The journal resource hands the runtime's books to the gate's pairing: both versions on the same
    bars, each return the one the runtime booked (same fee + slippage), the challenger's and champion's
    books different."""
    candles = synthetic_candles(40)
    journal = journal_resource(tmp_path)
    _shadow_trade(journal.database_url, candles, range(500, 530))
    positions = journal.shadow_positions()
    assert set(positions["model_version"]) == {"xray-gbm/3", "xray-gbm/4"}
    pair = shadow_pair(positions, candles, "xray-gbm/4", "xray-gbm/3", cost=0.0015, bars_per_year=8760)
    assert pair is not None and pair.champion is not None
    assert len(pair.challenger) == len(pair.champion) > 0
    assert not np.array_equal(pair.challenger, pair.champion)
    # Without a champion's book, no pairing from the books: the folds decide.
    alone = shadow_pair(positions, candles, "xray-gbm/4", "xray-gbm/9", cost=0.0015, bars_per_year=8760)
    assert alone is None


PG_ADMIN = os.environ.get("XRAY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.mark.postgres
def test_the_books_are_kept_in_postgres_and_a_tick_recorded_twice_counts_once():
    name = f"xray_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
        assert read_shadow_bars(url).is_empty()
        candles = synthetic_candles(40)
        first = _shadow_trade(url, candles, range(500, 505))
        # A second process (or a restart) over overlapping bars adds only the bars not yet recorded.
        again = _shadow_trade(url, candles, range(503, 508))
        rows = read_shadow_bars(url)
        assert (first, again) == (20, 12) and rows.height == 32
        assert set(rows.group_by("model", "version", "symbol").len()["len"]) == {8}
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
