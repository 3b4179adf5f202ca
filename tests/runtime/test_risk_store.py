"""Users' risk state in SQL (SQLite and Postgres) and the global totals across processes (Redis): rows
come back as written, a write never takes a row backwards, re-enabling clears the kill, and a process
judges the global daily loss on every process's users."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from order_path_support import PG_URL, REDIS_URL

from xray_core.risk.limits.global_daily_loss import GLOBAL_DAILY_LOSS
from xray_core.risk.limits.registry import code_of
from xray_core.risk.limits.state import SavedRisk
from xray_runtime.book import Book, Sizing
from xray_runtime.db import connect
from xray_runtime.risk_keeper import RiskKeeper
from xray_runtime.risk_store import RiskStore, risk_resets, risk_table
from xray_runtime.risk_totals import LocalTotals, RedisTotals
from xray_runtime.users import UserStore

NAN = math.nan
DAY = 20_000  # a UTC day number
DAY_MS = 86_400_000


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        yield RiskStore(connect(f"sqlite:///{tmp_path}/runtime.db"))
        return
    name = f"risk_{uuid.uuid4().hex[:12]}"
    base = connect(PG_URL, create=False)
    with base.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine = base.execution_options(schema_translate_map={None: name})
    risk_table.create(engine)
    try:
        yield RiskStore(engine)
    finally:
        with base.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
        base.dispose()


def test_rows_come_back_as_written_nan_as_not_measured(store):
    rows = {"a": SavedRisk(DAY, 1000.0, 1100.0, False), "b": SavedRisk(None, NAN, NAN, True)}
    store.save(rows, now_ms=1)
    loaded = store.load(["a", "b", "nobody"])
    assert set(loaded) == {"a", "b"} and loaded["a"] == rows["a"]
    assert loaded["b"].same(rows["b"]) and store.snapshot().keys() == {"a", "b"}


def test_a_write_never_takes_a_row_backwards(store):
    store.save({"a": SavedRisk(DAY, 1000.0, 1200.0, True)}, now_ms=1)
    # A stale writer: not killed, a lower peak, another opening equity for the same day.
    store.save({"a": SavedRisk(DAY, 900.0, 1000.0, False)}, now_ms=2)
    assert store.load(["a"])["a"] == SavedRisk(DAY, 1000.0, 1200.0, True)
    store.save({"a": SavedRisk(DAY - 1, 800.0, 1300.0, False)}, now_ms=3)  # yesterday's: only the peak
    assert store.load(["a"])["a"] == SavedRisk(DAY, 1000.0, 1300.0, True)
    store.save({"a": SavedRisk(DAY + 1, 950.0, NAN, False)}, now_ms=4)  # a new day opens
    assert store.load(["a"])["a"] == SavedRisk(DAY + 1, 950.0, 1300.0, True)
    store.save({"b": SavedRisk(DAY, NAN, 10.0, False)}, now_ms=5)
    store.save({"b": SavedRisk(DAY, 9.0, 10.0, False)}, now_ms=6)  # measured later the same day
    assert store.load(["b"])["b"].day_open == 9.0


def test_re_enabling_a_user_clears_the_kill_and_measures_the_drawdown_anew(tmp_path):
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    users = UserStore(engine, None)
    with engine.begin() as conn:  # a user row without credentials work: enable needs no Fernet key
        from xray_runtime.users import users_table

        now = sa.func.current_timestamp()
        conn.execute(users_table.insert().values(
            user_id="a", account="A", exchange="mexc", mode="paper", live_opt_in=False, status="disabled",
            disabled_reason="drawdown", risk="{}", api_key_enc="x", api_secret_enc="x", key_fingerprint="f",
            created_at=now, updated_at=now))
    store = RiskStore(engine)
    store.save({"a": SavedRisk(DAY, 1000.0, 1200.0, True)}, now_ms=1)
    users.enable("a")
    row = store.load(["a"])["a"]
    assert not row.killed and math.isnan(row.peak) and row.day_open == 1000.0


def test_risk_resets_names_the_users_whose_state_went_backwards():
    before = {"kept": SavedRisk(DAY, 100.0, 120.0, False), "unkilled": SavedRisk(DAY, 100.0, 120.0, True),
              "reopened": SavedRisk(DAY, 100.0, 120.0, False), "peak": SavedRisk(DAY, 100.0, 120.0, False),
              "gone": SavedRisk(DAY, 100.0, 120.0, False), "revived": SavedRisk(DAY, 100.0, 120.0, True),
              "unmeasured": SavedRisk(DAY, NAN, NAN, False)}
    after = {"kept": SavedRisk(DAY + 1, 90.0, 130.0, False), "unkilled": SavedRisk(DAY, 100.0, 120.0, False),
             "reopened": SavedRisk(DAY, 95.0, 120.0, False), "peak": SavedRisk(DAY, 100.0, 110.0, False),
             "revived": SavedRisk(DAY, 100.0, NAN, False), "unmeasured": SavedRisk(DAY, 99.0, 99.0, False)}
    assert risk_resets(before, after, reenabled=["revived"]) == ["gone", "peak", "reopened", "unkilled"]


def _book(users: str, price: float) -> Book:
    """Each of `users` (one letter each) holds 1 BTC, priced at `price`, and nothing else."""
    book = Book()
    book.set_symbols(["BTC/USDT"])
    book.set_users([(u, Sizing("balanced", 0.1, 1.0, 1.0, 1000.0, 0.5, 0.9)) for u in users])
    for user_id in users:
        book.set_balances(user_id, {"USDT": 0.0, "BTC": 1.0})
        book.set_held(user_id, {"BTC/USDT": 1.0})
    book.mark({"BTC/USDT": price})
    return book


@pytest.mark.redis
async def test_the_global_switch_sees_every_processs_users_through_redis(tmp_path):
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test-risk-{uuid.uuid4().hex[:10]}"
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    try:
        here = RiskKeeper(RiskStore(engine), RedisTotals(client, prefix), global_max_daily_loss=0.2)
        there = RiskKeeper(RiskStore(engine), RedisTotals(client, prefix), global_max_daily_loss=0.2)
        alone = RiskKeeper(RiskStore(engine), LocalTotals(), global_max_daily_loss=0.2)
        mine, theirs = _book("a", 100.0), _book("bc", 100.0)
        for keeper, book in ((here, mine), (there, theirs), (alone, _book("a", 100.0))):
            await keeper.users_changed(book, {})
            assert not (await keeper.check(book, DAY * DAY_MS)).global_on  # the day opens at 300
        theirs.mark({"BTC/USDT": 60.0})  # the other process's users lose 40% each
        assert (await there.check(theirs, DAY * DAY_MS + 1)).global_on  # 300 -> 220: 26.7% down
        check = await here.check(mine, DAY * DAY_MS + 2)  # a alone is not down at all
        assert check.global_on and list(check.block) == [code_of(GLOBAL_DAILY_LOSS)]
        assert not (await alone.check(_book("a", 100.0), DAY * DAY_MS + 2)).global_on  # only itself
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_user_new_to_a_process_gets_the_stored_state_and_changes_are_written_back(tmp_path):
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    store = RiskStore(engine)
    store.save({"a": SavedRisk(DAY, 100.0, 150.0, False), "b": SavedRisk(DAY - 1, 100.0, 150.0, True)}, 1)
    keeper = RiskKeeper(store, LocalTotals(), global_max_daily_loss=0.5)
    book = _book("abc", 120.0)
    await keeper.users_changed(book, {})
    check = await keeper.check(book, DAY * DAY_MS + 5)
    assert list(check.killed) == [False, True, False] and not check.newly_killed.any()
    a, b, c = (keeper.state_of(u) for u in "abc")
    assert (a.day_open, a.peak) == (100.0, 150.0)  # today's opening and the peak, as stored
    assert b.killed and b.day_open == 120.0 and b.peak == 150.0  # yesterday's opening is not today's
    assert (c.day_open, c.peak, c.killed) == (120.0, 120.0, False)  # new: measured now
    assert await keeper.save(DAY * DAY_MS + 5) == 2  # a is as stored
    assert store.load(["b", "c"]) == {"b": SavedRisk(DAY, 120.0, 150.0, True),
                                      "c": SavedRisk(DAY, 120.0, 120.0, False)}
    assert await keeper.save(DAY * DAY_MS + 6) == 0  # nothing changed: nothing written
    np.testing.assert_array_equal(check.block > 0, [False, True, False])


async def test_a_state_found_behind_the_stored_one_is_counted_as_a_reset(tmp_path):
    store = RiskStore(connect(f"sqlite:///{tmp_path}/runtime.db"))
    store.save({"a": SavedRisk(DAY, 100.0, 150.0, True), "b": SavedRisk(DAY, 100.0, 150.0, False)}, 1)
    keeper = RiskKeeper(store, LocalTotals(), global_max_daily_loss=0.5)
    book = _book("ab", 120.0)
    await keeper.users_changed(book, {})
    await keeper.check(book, DAY * DAY_MS + 5)
    await keeper.save(DAY * DAY_MS + 5)
    assert keeper.resets == set()  # put back as stored: nothing lost
    # As if a's state were lost in this process (what a broken hand-over would do): measured anew.
    keeper.book.reindex(np.array([-1, 1]), keeper.book.limits)
    await keeper.check(book, DAY * DAY_MS + 6)
    await keeper.save(DAY * DAY_MS + 6)
    assert keeper.resets == {"a"}
    assert store.load(["a"])["a"] == SavedRisk(DAY, 100.0, 150.0, True)  # the store kept it anyway


async def test_a_user_handed_over_mid_run_gets_the_state_its_last_process_stored(tmp_path):
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    old_owner, new_owner = (RiskKeeper(RiskStore(engine), LocalTotals(), 0.5) for _ in range(2))
    mine, theirs = _book("a", 100.0), _book("b", 100.0)
    await new_owner.users_changed(mine, {})
    await old_owner.users_changed(theirs, {})
    for keeper, book in ((new_owner, mine), (old_owner, theirs)):
        await keeper.check(book, DAY * DAY_MS)
        await keeper.save(DAY * DAY_MS)
    theirs.mark({"BTC/USDT": 130.0})  # b's peak rises to 130 while the old owner has it
    await old_owner.check(theirs, DAY * DAY_MS + 1)
    await old_owner.save(DAY * DAY_MS + 1)
    # The old owner dies; b moves to the new owner, whose book grows by one row.
    old_index = dict(mine.user_index)
    mine.set_users([(u, mine.sizing[0]) for u in ("a", "b")])
    mine.set_held("b", {"BTC/USDT": 1.0})
    mine.set_balances("b", {"USDT": 0.0, "BTC": 1.0})
    mine.mark({"BTC/USDT": 110.0})
    await new_owner.users_changed(mine, old_index)
    await new_owner.check(mine, DAY * DAY_MS + 2)
    b = new_owner.state_of("b")
    assert (b.day_open, b.peak) == (100.0, 130.0) and new_owner.state_of("a").day_open == 100.0
    assert new_owner.resets == set()


@pytest.mark.redis
async def test_withdrawals_are_no_loss_to_the_global_switch_and_deposits_no_gain(tmp_path):
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = f"test-risk-{uuid.uuid4().hex[:10]}"
    engine = connect(f"sqlite:///{tmp_path}/runtime.db")
    try:
        here = RiskKeeper(RiskStore(engine), RedisTotals(client, prefix), global_max_daily_loss=0.2)
        there = RiskKeeper(RiskStore(engine), RedisTotals(client, prefix), global_max_daily_loss=0.2)
        mine, theirs = _book("a", 100.0), _book("bc", 100.0)
        for keeper, book in ((here, mine), (there, theirs)):
            await keeper.users_changed(book, {})
            assert not (await keeper.check(book, DAY * DAY_MS)).global_on  # the day opens at 300
        for user_id in "bc":  # each withdraws half: 200 -> 100 of equity, all of it moved out
            theirs.set_balances(user_id, {"USDT": 0.0, "BTC": 0.5})
            theirs.set_transfers(user_id, -50.0)
        assert not (await there.check(theirs, DAY * DAY_MS + 1)).global_on
        assert not (await here.check(mine, DAY * DAY_MS + 2)).global_on
        assert here.baselines("a", mine) == (100.0, 100.0)
        assert there.baselines("b", theirs) == (50.0, 50.0)  # the day-open and peak moved with it
        for user_id in "bc":  # and deposits it back
            theirs.set_balances(user_id, {"USDT": 0.0, "BTC": 1.0})
            theirs.set_transfers(user_id, 0.0)
        assert not (await there.check(theirs, DAY * DAY_MS + 3)).global_on
        # A deposit hides nothing: a deposits 100 and its BTC falls to 10 (raw: 300 -> 310, up).
        mine.set_balances("a", {"USDT": 100.0, "BTC": 1.0})
        mine.set_transfers("a", 100.0)
        mine.mark({"BTC/USDT": 10.0})
        check = await here.check(mine, DAY * DAY_MS + 4)
        assert check.global_on  # 310 of a day-open moved to 400: down 22.5%
    finally:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
