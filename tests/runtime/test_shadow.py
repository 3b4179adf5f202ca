"""Shadow trading: the runtime evaluates every challenger (and the champion) on the bars it trades and
keeps a paper book per model, recorded per bar in the journal's `shadow_bars`; no order ever leaves
for a shadow; the books continue across a restart from SQL."""

import asyncio
from typing import ClassVar

import numpy as np
import polars as pl
import pytest
from service_support import MINUTE, add_users, run_bars, start_service

from xray_core.bundle import Bundle, publish
from xray_core.candles.bars import Bars
from xray_core.learning.shadow_record import shadow_frame, shadow_returns
from xray_core.strategies import get_strategy
from xray_runtime.artefacts import Promoted, ShadowModel, SymbolPlan
from xray_runtime.market import SymbolBars

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
FEE, SLIPPAGE = 0.001, 0.0005


class MomentumPredictor:
    """P(up) = 0.5 + 100 x the last bar's log return (+ shift): long after a rising bar (the model
    strategy's default threshold is 0.55), flat after a falling one, so a book enters and exits within
    a few minutes of the emulator's market."""

    feature_names: ClassVar[list[str]] = ["log_return"]

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        return np.clip(0.5 + 100.0 * frame["log_return"].to_numpy() + self.shift, 0.0, 1.0)


def loader(calls: list[str]):
    def load(uri: str):
        calls.append(uri)
        if "broken" in uri:
            raise OSError("registry unreachable")
        return MomentumPredictor(shift=0.05 if uri.endswith("/7") else 0.0)
    return load


def shadow_bundle() -> Bundle:
    """Rules trade both symbols (sma_cross); the gbm champion v3 and challenger v7, and an lstm
    challenger whose artefact cannot be loaded, are shadowed."""
    return Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": 2, "slow": 3}, "group": 0}
                 for s in SYMBOLS],
        risk_profiles={}, feature_version="f", code_version="c",
        models={"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm@champion", "version": 3}},
        challengers={"gbm": {"name": "xray-gbm", "uri": "models:/xray-gbm/7", "version": 7},
                     "lstm": {"name": "xray-lstm", "uri": "models:/xray-lstm/broken", "version": 2}},
        costs={"fee": FEE, "slippage": SLIPPAGE},
        data_versions={s: f"data-{s}" for s in SYMBOLS},
    )


def _rows(service) -> pl.DataFrame:
    return shadow_frame(service.shadow.rows())


@pytest.mark.slow
async def test_challengers_keep_shadow_books_and_no_order_leaves_for_them(runtime_env):
    settings, emulator, admin = runtime_env
    publish(shadow_bundle(), settings.bundle_dir)
    _, keys = add_users(settings, admin, 2)
    calls: list[str] = []
    service = await start_service(settings, emulator.base_url, model_loader=loader(calls))
    try:
        health = service.health()
        assert sorted(health["shadow_models"]) == ["xray-gbm/3 (champion)", "xray-gbm/7 (challenger)"]
        assert "registry unreachable" in health["shadow_refused"]["xray-lstm/2"]  # left out, trading on
        assert "models:/xray-gbm/3" in calls  # the champion by version: its alias may move
        reports = await run_bars(service, admin, 12)
        rows = _rows(service)
    finally:
        await service.stop()
    assert sum(r.shadow_rows for r in reports) == rows.height
    books = shadow_returns(rows)
    # One book per model and symbol, a row for every bar the runtime decided on since it started.
    assert set(books) == {(m, v, s) for m, v in (("xray-gbm", 3), ("xray-gbm", 7)) for s in SYMBOLS}
    decided = sorted({r.bar_ms for r in reports})
    for series in books.values():
        assert len(series) >= 12 and set(decided) <= set(series.bar_ms.tolist())
        assert (np.diff(series.bar_ms) == MINUTE).all()
    assert set(rows.filter(pl.col("version") == 7)["role"]) == {"challenger"}
    challenger = rows.filter(pl.col("version") == 7)
    assert challenger["position"].sum() > 0 and (challenger["position"] == 0).any()  # it went long and out
    # Orders: only the rules', each with rule lineage; the exchange saw exactly the journal's orders.
    orders = [o for user_id in keys for o in service.parts.journal.orders(user_id)]
    assert orders, "the rules traded"
    assert {(o.lineage.strategy, o.lineage.model_version) for o in orders} == {("sma_cross", None)}
    assert admin.stats()["orders"] == len(orders)


@pytest.mark.slow
async def test_shadow_books_continue_after_a_restart_with_the_returns_they_promise(runtime_env):
    settings, emulator, admin = runtime_env
    publish(shadow_bundle(), settings.bundle_dir)
    add_users(settings, admin, 1)
    service = await start_service(settings, emulator.base_url, model_loader=loader([]))
    try:
        await run_bars(service, admin, 5)
        before = _rows(service)
    finally:
        await service.stop()
    await asyncio.to_thread(admin.advance, 3 * MINUTE)  # the runtime is down for three bars
    service = await start_service(settings, emulator.base_url, model_loader=loader([]))
    try:
        await run_bars(service, admin, 4)
        after = _rows(service)
    finally:
        await service.stop()
    book_bar = ["model", "version", "symbol", "bar"]
    kept = after.join(before.select(book_bar), on=book_bar)
    assert kept.sort(kept.columns).equals(before.sort(before.columns))  # the record is history: unchanged
    for (model, version, symbol), series in shadow_returns(after).items():
        # The missed bars are filled from the candle window: one book, no gap, no bar twice.
        assert (np.diff(series.bar_ms) == MINUTE).all() and len(series) >= 5 + 3 + 4, (model, version, symbol)
        book = after.filter((pl.col("model") == model) & (pl.col("version") == version)
                            & (pl.col("symbol") == symbol)).sort("bar")
        position, close, ret = (book[c].to_numpy() for c in ("position", "close", "ret"))
        held = np.concatenate([[0.0], position[:-1]])  # each book opened flat
        change = np.concatenate([[0.0], close[1:] / close[:-1] - 1.0])
        expected = held * change - (FEE + SLIPPAGE) * np.abs(position - held)
        assert np.allclose(ret[1:], expected[1:], atol=1e-12)
        assert ret[0] == pytest.approx(-(FEE + SLIPPAGE) * position[0])


class Broken:
    feature_names: ClassVar[list[str]] = ["log_return"]

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        raise RuntimeError("model exploded")


def _bars(n: int, offset: int = 0) -> dict[str, SymbolBars]:
    rng = np.random.default_rng(3)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, size=(len(SYMBOLS), 400 + n)), axis=1))
    stamps = np.arange(400 + n, dtype=np.int64) * MINUTE
    data = {}
    for k, symbol in enumerate(SYMBOLS):
        c = closes[k][offset:offset + 400]
        bars = Bars(stamps[offset:offset + 400], c, c * 1.001, c * 0.999, c, np.full(400, 10.0))
        data[symbol] = SymbolBars(symbol, bars, True)
    return data


def _promoted(models: dict) -> Promoted:
    rule = get_strategy("sma_cross")
    plans = {s: SymbolPlan(s, rule, rule.params({"fast": 2, "slow": 3}), "{}", "d") for s in SYMBOLS}
    shadow = {(name, version): ShadowModel("gbm", name, version, "challenger", predictor)
              for (name, version), predictor in models.items()}
    return Promoted(version="b1", exchange="mexc", timeframe="1m", plans=plans, risk_profiles={}, models={},
                    shadow=shadow, costs=(FEE, SLIPPAGE))


def test_a_failing_model_or_database_costs_its_book_a_tick_never_the_runtime(tmp_path):
    from sqlalchemy import text

    from xray_runtime.db import connect
    from xray_runtime.shadow import ShadowBooks

    engine = connect(f"sqlite:///{tmp_path / 'runtime.db'}")
    books = ShadowBooks(engine)
    promoted = _promoted({("xray-gbm", 7): MomentumPredictor(0.05), ("xray-lstm", 2): Broken()})
    first = books.record(promoted, _bars(5, 0))
    assert first.rows == len(SYMBOLS)  # the good model's books opened; the broken one has reasons
    assert set(first.failures) == {f"xray-lstm/2 {s}" for s in SYMBOLS}
    assert all("model exploded" in reason for reason in first.failures.values())
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE shadow_bars RENAME TO shadow_away"))  # the database fails
    failed = books.record(promoted, _bars(5, 1))
    assert failed.rows == 0 and "shadow_bars" in books.last_error
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE shadow_away RENAME TO shadow_bars"))
    later = books.record(promoted, _bars(5, 3))  # back: the bars missed meanwhile are recorded too
    assert later.rows == 3 * len(SYMBOLS) and books.last_error is None
    stamps = {row["bar_ms"] for row in books.rows("xray-gbm")}
    assert stamps == {399 * MINUTE + k * MINUTE for k in range(4)}
