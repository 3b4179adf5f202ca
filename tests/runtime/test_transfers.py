"""The journal's transfers: what each is worth to the equity, and a balance read while a transfer
moved is not used."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from order_path_support import PG_URL

from xray_core.exchange.reports import BalanceReport, Transfer
from xray_runtime.db import connect
from xray_runtime.transfers import TransferStore, read_around, transfers_table, values_of, watch_table


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield TransferStore(connect(f"sqlite:///{tmp_path}/runtime.db"))
        return
    name = f"transfers_{uuid.uuid4().hex[:12]}"
    base = connect(PG_URL, create=False)
    with base.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = base.execution_options(schema_translate_map={None: name})
    transfers_table.create(engine)
    watch_table.create(engine)
    try:
        yield TransferStore(engine)
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        base.dispose()


def _t(tid: str, asset: str, amount: float, status: str = "ok") -> Transfer:
    return Transfer(tid, asset, amount, 1, status)


def test_quote_transfers_count_whole_and_coins_only_what_they_moved_of_x_rays_position():
    transfers = [_t("d1", "USDT", 250.0), _t("w1", "BTC", -2.0), _t("d2", "ETH", 5.0),
                 _t("w2", "SOL", -1.0, "canceled"), _t("old", "USDT", -9.0)]
    # X-Ray held 1.5 BTC of a 3 BTC balance: withdrawing 2 leaves 1, so its position fell by 0.5.
    # ETH: a deposit beside X-Ray's own position changes nothing it counts.
    values = values_of(transfers, {"old": True}, "USDT", {"BTC": -0.5, "ETH": 0.0, "SOL": 0.0},
                       {"BTC": 100.0, "ETH": 10.0, "SOL": 5.0})
    assert values == {"d1": 250.0, "w1": -50.0, "d2": 0.0}
    # Never more than the transfer itself moved, and a coin never priced is worth nothing.
    assert values_of([_t("w", "BTC", -0.1)], {}, "USDT", {"BTC": -0.5}, {"BTC": 100.0}) == {"w": -10.0}
    assert values_of([_t("w", "BTC", -0.1)], {}, "USDT", {"BTC": -0.1}, {}) == {}


class _Venue:
    """Lists one more withdrawal on every call after the first: it lands while the balance is read."""

    def __init__(self, moving: bool) -> None:
        self.calls, self.moving = 0, moving

    async def fetch_transfers(self, since_ms: int | None) -> list[Transfer]:
        self.calls += 1
        landed = self.moving and self.calls > 1
        return [_t("w1", "USDT", -100.0)] + ([_t("w2", "USDT", -50.0, "pending")] if landed else [])


async def test_a_transfer_landing_during_the_balance_read_defers_both(tmp_path):
    store = TransferStore(connect(f"sqlite:///{tmp_path / 'runtime.db'}"))
    balance = BalanceReport({"USDT": 1.0}, {"USDT": 0.0}, {"USDT": 1.0})

    async def read() -> BalanceReport:
        return balance

    assert await read_around(_Venue(moving=True), store, "u", read) is None  # type: ignore[arg-type]
    steady = await read_around(_Venue(moving=False), store, "u", read)  # type: ignore[arg-type]
    assert steady is not None and [t.transfer_id for t in steady[1]] == ["w1"]


def test_the_first_look_is_baseline_and_later_ones_count_once_each(store):
    before = _t("w0", "USDT", -400.0)
    assert store.record("u", [before], {"w0": -400.0}, 1) == 1  # first look: valued 0
    later = [before, _t("w1", "USDT", -100.0, "pending")]
    assert store.record("u", later, {"w1": -100.0}, 2) == 1
    assert store.record("u", later, {"w1": -100.0}, 3) == 0
    assert store.net(["u", "v"]) == {"u": -100.0, "v": 0.0}
    assert store.record("u", [_t("w1", "USDT", -100.0, "failed")], {}, 4) == 0  # refunded
    assert store.net(["u"]) == {"u": 0.0}
    week = 7 * 86_400_000
    assert store.since("u", 1) == 1 - week and store.since("u", 1 + week) is None  # too far back
    assert store.since("v", 2) is None
