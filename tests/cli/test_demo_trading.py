"""The trading part of `xray demo`: demo users trade a published bundle on the emulator; the summary's
numbers come from the journal and the book, and the exchange agrees with the journal."""

from __future__ import annotations

import dataclasses
import math

import pytest

from xray_cli.demo_trading import DemoUser, run_demo_trading, trade_demo_users
from xray_core.bundle import Bundle, publish

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
USERS = (
    DemoUser("demo-a", "A", "conservative", 2_000.0, 0.05, 250.0),
    DemoUser("demo-b", "B", "balanced", 10_000.0, 0.10, 1_500.0),
    DemoUser("demo-c", "C", "aggressive", 25_000.0, 0.25, 6_000.0),
)


def fast_bundle() -> Bundle:
    """sma_cross on 1m bars with short windows: it crosses every few bars, so there are orders."""
    return Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": s, "strategy": "sma_cross", "params": {"fast": 2, "slow": 3}, "group": 0}
                 for s in SYMBOLS],
        risk_profiles={}, models={}, feature_version="f", code_version="c",
        data_versions={s: f"data-{s}" for s in SYMBOLS},
    )


async def test_demo_users_trade_and_the_exchange_agrees(tmp_path, emulator):
    bundle = fast_bundle()
    publish(bundle, tmp_path / "bundles")
    result = await trade_demo_users(emulator.base_url, tmp_path / "bundles", tmp_path, bars=12, users=USERS)

    assert result.bundle_version == bundle.version and result.timeframe == "1m"
    assert result.ticks == 12 and len(result.step_s) == 12
    assert result.total_orders > 0 and result.total_fills > 0
    assert {u.user_id for u in result.users} == {u.user_id for u in USERS}
    for user, demo in zip(result.users, USERS, strict=True):
        assert user.profile == demo.profile and user.start_equity == demo.funds_usdt
        assert user.orders == user.buys + user.sells > 0 and user.fills > 0 and user.fees_quote > 0
        assert math.isfinite(user.final_equity) and user.final_equity > 0
        assert user.pnl == pytest.approx(user.final_equity - demo.funds_usdt)
        assert abs(user.pnl_pct) < 0.2  # a dozen one-minute bars move a sized book a little, not a lot
    for order in result.orders:  # lineage of what each order was decided from
        assert order.lineage.bundle_version == bundle.version and order.lineage.strategy == "sma_cross"
    assert result.audit.users == len(USERS) and result.audit.clean, result.audit.details
    assert not result.problems


def test_the_report_prints_users_orders_and_the_audit(tmp_path, emulator, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # rich reads it on every print: no wrapping in the cells
    publish(fast_bundle(), tmp_path / "bundles")
    run_demo_trading(emulator.base_url, tmp_path / "bundles", tmp_path, bars=8, users=USERS[:2])
    text = capsys.readouterr().out
    assert "demo-a" in text and "conservative" in text and "sma_cross" in text
    assert "exchange and journal agree: 2 users, 0 duplicates, 0 lost fills, 0 mismatches" in text
    assert not (tmp_path / "runtime.db").exists(), "the demo's database lives under demo/, apart"
    assert (tmp_path / "demo" / "runtime.db").exists()


def test_no_orders_is_said_plainly(tmp_path, emulator, capsys, monkeypatch):
    """The emulator's SRM/USDT is halted: it has no fresh bars, so nothing is decided and nothing traded."""
    monkeypatch.setenv("COLUMNS", "160")
    halted = Bundle(
        exchange="mexc", timeframe="1m",
        symbols=[{"symbol": "SRM/USDT", "strategy": "sma_cross", "params": {"fast": 2, "slow": 3},
                  "group": 0}],
        risk_profiles={}, models={}, feature_version="f", code_version="c", data_versions={},
    )
    publish(halted, tmp_path / "bundles")
    result = run_demo_trading(emulator.base_url, tmp_path / "bundles", tmp_path, bars=2, users=USERS[:1])
    text = capsys.readouterr().out
    assert result.total_orders == 0 and result.users[0].pnl == pytest.approx(0.0)
    assert "No orders: in 2 bars no promoted symbol could be decided" in text
    assert "not decided on the last bar: SRM/USDT (" in text
    assert result.audit.clean


class _Momentum:
    """P(up) from the last bar's return: long after a rising bar."""

    feature_names = ("log_return",)

    def predict_proba(self, frame):
        import numpy as np

        return np.clip(0.5 + 100.0 * frame["log_return"].to_numpy(), 0.0, 1.0)


def test_the_report_shows_each_challengers_shadow_book(tmp_path, emulator, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setattr("xray_runtime.components.load_predictor", lambda uri: _Momentum())  # no MLflow here
    challenger = {"name": "xray-gbm", "uri": "models:/xray-gbm/2", "version": 2}
    bundle = dataclasses.replace(fast_bundle(), challengers={"gbm": challenger},
                                 costs={"fee": 0.001, "slippage": 0.0005})
    publish(bundle, tmp_path / "bundles")
    result = run_demo_trading(emulator.base_url, tmp_path / "bundles", tmp_path, bars=6, users=USERS[:1])
    text = capsys.readouterr().out
    assert {(b["model"], b["version"], b["symbol"]) for b in result.shadow} == {
        ("xray-gbm", 2, s) for s in SYMBOLS}
    assert all(b["bars"] >= 6 for b in result.shadow)
    assert "shadow books" in text and "xray-gbm/2" in text
    assert all(o.lineage.model_version is None for o in result.orders)  # the challenger never ordered
