"""The two-way Telegram bot: python-telegram-bot itself, over real HTTP, against the loopback fake Bot
API (which serves getUpdates and lets a test type as a user). Every command, the one-time link codes,
the refusal of unknown chats, and that a chat never sees another user's data."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from xray_core.trading.orders import Fill, Lineage, Order, OrderIntent, OrderStatus, Side
from xray_runtime.account_view import AccountView
from xray_runtime.bot import texts
from xray_runtime.bot.app import run_bot
from xray_runtime.bot.links import LinkCodes, link_table
from xray_runtime.bot.pacing import PacedLimiter
from xray_runtime.crypto import KeyVault, generate_key
from xray_runtime.db import connect
from xray_runtime.journal import Journal
from xray_runtime.settings import TelegramSettings
from xray_runtime.user_control import UserControl
from xray_runtime.users import UserStore
from xray_sim.telegram.fake_bot import FakeBot, start_fake_bot

TOKEN = "7012345678:AAHfake-Bot_tokenValue0123456789"
ALICE_CHAT, BOB_CHAT, STRANGER = 1001, 2002, 9009


@dataclass
class World:
    fake: FakeBot
    engine: sa.Engine
    store: UserStore

    async def ask(self, chat: int, text: str) -> str:
        """Type `text` in `chat` and wait for the bot's reply (what the user sees)."""
        before = len(self.fake.messages(chat))
        self.fake.user_says(chat, text)
        for _ in range(600):  # a hang guard, not a time limit: a reply normally takes milliseconds
            got = self.fake.messages(chat)
            if len(got) > before:
                return got[before].plain
            await asyncio.sleep(0.05)
        raise AssertionError(f"no reply to {text!r} in chat {chat}")


def _fills(journal: Journal, user_id: str, symbol: str, buy: float, sell: float, strategy: str) -> None:
    lineage = Lineage("bundle-1", strategy, '{"fast": 2}', f"model-{user_id}", f"data-{symbol}@1")
    base = symbol.split("/")[0]
    for n, (side, price, fee, currency) in enumerate([(Side.BUY, buy, 0.001, base),
                                                      (Side.SELL, sell, 0.1, "USDT")]):
        intent = OrderIntent(user_id, symbol, side, 1.0 if side == Side.BUY else 0.999, 60_000 * (n + 1),
                             "enter" if side == Side.BUY else "exit", lineage)
        order = Order.from_intent(intent, 1).advance(OrderStatus.SUBMITTED, 2).advance(
            OrderStatus.FILLED, 3, filled=intent.amount, average=price)
        journal.upsert_orders([order])
        journal.add_fills([Fill(f"{user_id}-{n}", order.client_order_id, user_id, symbol, side, intent.amount,
                                price, fee, currency, 1_700_000_000_000 + n * 60_000)])


@pytest.fixture
def fake() -> Iterator[FakeBot]:
    with start_fake_bot(TOKEN) as bot:
        yield bot


@contextlib.asynccontextmanager
async def running(fake: FakeBot, tmp_path, limiter: PacedLimiter | None = None,
                  confirm_s: float = 30.0) -> AsyncIterator[World]:
    engine = connect(f"sqlite:///{tmp_path / 'runtime.db'}")
    store = UserStore(engine, KeyVault(generate_key()))
    store.add("alice", "Alice A.", "key-alice", "secret-alice")
    store.add("bob", "Bob B.", "key-bob", "secret-bob")
    journal = Journal(engine)
    _fills(journal, "alice", "BTC/USDT", 100.0, 110.0, "sma_cross")
    _fills(journal, "bob", "ETH/USDT", 10.0, 9.0, "rsi_reversion")
    settings = TelegramSettings(bot_token=TOKEN, api_url=fake.api_url, max_retries=1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(engine, settings, stop, poll_timeout_s=1.0, confirm_s=confirm_s,
                                       limiter=limiter or PacedLimiter(0.0, 0.0, 1000.0)))
    world = World(fake, engine, store)
    try:
        for code_user, chat in (("alice", ALICE_CHAT), ("bob", BOB_CHAT)):
            code = LinkCodes(engine).issue(code_user)
            assert (await world.ask(chat, f"/start {code}")).startswith("Linked")
        yield world
    finally:
        stop.set()
        await task
        engine.dispose()


async def test_start_links_a_chat_with_a_one_time_expiring_code(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        assert world.store.get("alice").telegram_chat_id == ALICE_CHAT
        assert fake.commands and {c["command"] for c in fake.commands} >= {"status", "stop", "help"}
        links = LinkCodes(world.engine)
        code = links.issue("bob")
        with world.engine.connect() as conn:
            stored = conn.execute(sa.select(link_table.c.code_hash)).scalars().all()
        assert code not in stored and code.replace("-", "") not in stored  # only hashes are kept
        assert "Linked" in await world.ask(3003, f"/start {code}")
        assert world.store.get("bob").telegram_chat_id == 3003
        assert "not valid" in await world.ask(4004, f"/start {code}")  # used once, never again
        assert world.store.get("bob").telegram_chat_id == 3003
        expired = links.issue("bob", now_ms=1_000)  # issued long ago: expired after link_code_ttl_s
        assert "not valid" in await world.ask(4004, f"/start {expired}")
        assert "not valid" in await world.ask(4004, "/start AAAAA-BBBBB")
        assert "Welcome" in await world.ask(4004, "/start")
        assert "linked to alice" in await world.ask(ALICE_CHAT, "/start")


async def test_unknown_chats_get_a_polite_refusal_and_nothing_else(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        refusal = texts.NOT_LINKED.replace("<code>", "").replace("</code>", "")
        for command in ("/status", "/balance", "/profit", "/trades", "/pause", "/resume", "/stop",
                        "/confirm_stop", "hello"):
            assert await world.ask(STRANGER, command) == refusal
        assert UserControl(world.engine).not_active() == {}
        assert "/start CODE" in await world.ask(STRANGER, "/help")


async def test_each_chat_sees_only_its_own_user(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        status = await world.ask(ALICE_CHAT, "/status")
        assert "Alice A." in status and "State: trading" in status and "Bob" not in status
        balance = await world.ask(ALICE_CHAT, "/balance")
        assert "X-Ray holds nothing" in balance  # 1 BTC less the 0.001 fee, 0.999 sold
        profit = await world.ask(ALICE_CHAT, "/profit")
        expected = AccountView(world.engine).profit("alice").realised
        assert expected == pytest.approx(0.999 * 110 - 0.1 - 100.0)
        assert f"Realised: {expected:,.2f}" in profit and "ETH" not in profit
        trades = await world.ask(ALICE_CHAT, "/trades")
        assert "BTC/USDT" in trades and "sma_cross" in trades and "model-alice" in trades
        assert "ETH" not in trades and "rsi_reversion" not in trades and "model-bob" not in trades
        bob = await world.ask(BOB_CHAT, "/trades")
        assert "ETH/USDT" in bob and "BTC" not in bob and "alice" not in bob.lower()
        bob_profit = AccountView(world.engine).profit("bob").realised
        assert f"{bob_profit:,.2f}" in await world.ask(BOB_CHAT, "/profit")
        # A chat cannot name another user: arguments are ignored, the chat decides who it is.
        assert "Bob" not in await world.ask(ALICE_CHAT, "/status bob")


async def test_a_chat_holding_something_sees_its_balance(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        journal = Journal(world.engine)
        lineage = Lineage("bundle-1", "sma_cross", "{}", None, "d@1")
        intent = OrderIntent("alice", "SOL/USDT", Side.BUY, 2.0, 600_000, "enter", lineage)
        order = Order.from_intent(intent, 1)
        journal.upsert_orders([order])
        journal.add_fills([Fill("alice-sol", order.client_order_id, "alice", "SOL/USDT", Side.BUY, 2.0, 20.0,
                                0.5, "USDT", 1_700_001_000_000)])
        balance = await world.ask(ALICE_CHAT, "/balance")
        assert "SOL/USDT: 2 @ avg 20.250000" in balance and "Total value: 40.00" in balance
        assert "Open orders: 1; symbols held: 1" in await world.ask(ALICE_CHAT, "/status")
        assert "SOL" not in await world.ask(BOB_CHAT, "/balance")


async def test_pause_resume_and_stop_with_its_confirmation(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        control = UserControl(world.engine)
        assert "Paused" in await world.ask(ALICE_CHAT, "/pause")
        assert control.get("alice").state == "paused" and control.get("bob").state == "active"
        assert "paused (no new entries)" in await world.ask(ALICE_CHAT, "/status")
        assert "Resumed" in await world.ask(ALICE_CHAT, "/resume")
        assert control.get("alice").state == "active"
        assert "/confirm_stop" in await world.ask(ALICE_CHAT, "/stop")
        assert control.get("alice").state == "active"  # nothing happens before the confirmation
        # Another chat cannot confirm alice's stop, nor stop bob with it.
        assert "no stop waiting" in await world.ask(BOB_CHAT, "/confirm_stop")
        assert control.get("bob").state == "active" and control.get("alice").state == "active"
        assert "Stopped" in await world.ask(ALICE_CHAT, "/confirm_stop")
        assert control.get("alice").state == "stopped" and control.get("alice").changed_by == "telegram"
        assert "no stop waiting" in await world.ask(ALICE_CHAT, "/confirm_stop")  # once
        assert "stopped (flattening" in await world.ask(ALICE_CHAT, "/status")
        assert "Resumed" in await world.ask(ALICE_CHAT, "/resume")
        assert control.get("alice").state == "active"


async def test_an_unconfirmed_stop_expires(fake, tmp_path):
    async with running(fake, tmp_path, confirm_s=0.0) as world:
        assert "expires" in await world.ask(ALICE_CHAT, "/stop")
        assert "no stop waiting" in await world.ask(ALICE_CHAT, "/confirm_stop")
        assert UserControl(world.engine).get("alice").state == "active"


async def test_help_lists_every_command(fake, tmp_path):
    async with running(fake, tmp_path) as world:
        help_text = await world.ask(ALICE_CHAT, "/help")
        for command in ("/start", "/status", "/balance", "/profit", "/trades", "/pause", "/resume", "/stop",
                        "/help"):
            assert command in help_text
        assert "did not understand" in await world.ask(ALICE_CHAT, "/frobnicate")


async def test_replies_are_paced_to_telegrams_per_chat_limit(fake, tmp_path):
    async with running(fake, tmp_path, limiter=PacedLimiter(per_chat_interval_s=1.0)) as world:
        before = len(fake.messages(ALICE_CHAT))
        for command in ("/help", "/status", "/help"):
            fake.user_says(ALICE_CHAT, command)
        for _ in range(600):
            if len(fake.messages(ALICE_CHAT)) >= before + 3:
                break
            await asyncio.sleep(0.05)
        replies = fake.messages(ALICE_CHAT)[before:]
        assert len(replies) == 3
        gaps = [b.received_s - a.received_s for a, b in itertools.pairwise(replies)]
        assert all(gap >= 0.9 for gap in gaps), gaps  # about one message a second per chat
        assert len(world.fake.messages(BOB_CHAT)) == 1  # only bob's own "Linked"


def test_users_link_code_prints_a_code_that_links(tmp_path, monkeypatch):
    from xray_cli.main import app

    url = f"sqlite:///{tmp_path / 'runtime.db'}"
    monkeypatch.setenv("XRAY_RUNTIME_DATABASE_URL", url)
    monkeypatch.setenv("XRAY_RUNTIME_FERNET_KEY", generate_key())
    engine = connect(url)
    UserStore(engine, KeyVault(generate_key())).add("carol", "Carol", "key-carol", "secret-carol")
    result = CliRunner().invoke(app, ["users", "link-code", "carol"])
    assert result.exit_code == 0, result.output
    code = result.output.split()[result.output.split().index("/start") + 1]
    assert LinkCodes(engine).redeem(code, 555) == "carol"
    assert UserStore(engine, None).get("carol").telegram_chat_id == 555
    missing = CliRunner().invoke(app, ["users", "link-code", "nobody"])
    assert missing.exit_code != 0 and "no user 'nobody'" in str(missing.exception)


def test_xray_bot_without_a_token_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from xray_runtime.bot.app import main

    monkeypatch.setenv("XRAY_RUNTIME_DATABASE_URL", f"sqlite:///{tmp_path / 'runtime.db'}")
    monkeypatch.delenv("XRAY_TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    assert main() != 0
    assert "XRAY_TELEGRAM_BOT_TOKEN" in capsys.readouterr().err
