"""Telegram notifications: the Bot API client and the notifier, against the loopback fake Bot API.

Nothing here reaches the real Telegram: every client points at `start_fake_bot`, which answers in the
Bot API's exact shapes and fails on request (flood control, 5xx, lost connections, blocked users).
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from xray_runtime.notify import Notifier, Pacer, TelegramClient, TelegramError
from xray_runtime.settings import TelegramSettings
from xray_sim.telegram.fake_bot import FakeBot, start_fake_bot

TOKEN = "7012345678:AAHfake-Secret_tokenValue0123456789"
WRONG_TOKEN = "7012345678:AAHsome-Other_tokenValue9876543210"


@dataclass(frozen=True)
class User:
    user_id: str
    telegram_chat_id: int | None


ALICE, BOB, CAROL = User("alice", 101), User("bob", 202), User("carol", 303)


@pytest.fixture
def bot() -> Iterator[FakeBot]:
    with start_fake_bot(TOKEN) as fake:
        yield fake


def client_for(bot: FakeBot, token: str = TOKEN, **options: Any) -> TelegramClient:
    """A client with short backoffs, so retry tests take milliseconds (429 waits retry_after)."""
    return TelegramClient(token, api_url=bot.api_url, **{"backoff_s": 0.01, **options})


def notifier_for(bot: FakeBot, **options: Any) -> Notifier:
    """A notifier on the fake; chats are paced at 50 ms instead of Telegram's 1 s to keep tests fast."""
    settings = TelegramSettings(bot_token=TOKEN, api_url=bot.api_url, max_retries=1)
    return Notifier(settings, **{"per_chat_interval_s": 0.05, **options})


def assert_no_token(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and WRONG_TOKEN not in text


# The client.


async def test_a_message_reaches_its_chat_and_telegrams_message_object_comes_back(bot: FakeBot) -> None:
    async with client_for(bot) as client:
        message = await client.send_message(42, "<b>Hello</b> &amp; welcome")
        me = await client.get_me()
    assert message["chat"] == {"id": 42, "first_name": "Trader", "type": "private"}
    assert message["text"] == "Hello & welcome"  # Telegram returns the text as the user sees it
    [received] = bot.messages(42)
    assert (received.message_id, received.text, received.plain, received.parse_mode) == (
        message["message_id"], "<b>Hello</b> &amp; welcome", "Hello & welcome", "HTML")
    assert bot.messages(43) == []
    assert me["is_bot"] is True and me["id"] == 7012345678


async def test_flood_control_waits_retry_after_and_then_delivers(bot: FakeBot) -> None:
    bot.fail_next(1, status=429, retry_after=1)
    async with client_for(bot) as client:
        await client.send_message(42, "after the flood")
    assert bot.requests("sendMessage") == 2
    assert [m.plain for m in bot.messages(42)] == ["after the flood"]


async def test_a_flood_wait_longer_than_the_limit_is_reported_not_waited(bot: FakeBot) -> None:
    bot.fail_next(1, status=429, retry_after=120)
    async with client_for(bot, max_retry_after_s=60) as client:
        with pytest.raises(TelegramError) as raised:
            await client.send_message(42, "too late")
    assert (raised.value.error_code, raised.value.retry_after, raised.value.retryable) == (429, 120, True)
    assert bot.requests("sendMessage") == 1


async def test_server_errors_and_lost_connections_are_retried_with_backoff(bot: FakeBot) -> None:
    bot.fail_next(1, status=500)
    bot.fail_next(1, status=502)  # Telegram's front end: an nginx HTML page, not JSON
    bot.disconnect_next(1)
    async with client_for(bot, max_retries=3) as client:
        await client.send_message(42, "finally")
    assert bot.requests("sendMessage") == 4
    assert [m.plain for m in bot.messages(42)] == ["finally"]


async def test_retries_stop_after_max_retries(bot: FakeBot) -> None:
    bot.fail_next(10, status=503)
    async with client_for(bot, max_retries=2) as client:
        with pytest.raises(TelegramError) as raised:
            await client.send_message(42, "never")
    assert raised.value.retryable and raised.value.error_code == 503
    assert bot.requests("sendMessage") == 3
    assert bot.messages() == []


async def test_a_user_who_blocked_the_bot_is_a_clear_error_without_retries(bot: FakeBot) -> None:
    bot.block(42)
    async with client_for(bot) as client:
        with pytest.raises(TelegramError) as raised:
            await client.send_message(42, "hello?")
    error = raised.value
    assert (error.chat_id, error.error_code, error.retryable) == (42, 403, False)
    assert "chat 42" in str(error) and "Forbidden: bot was blocked by the user" in str(error)
    assert bot.requests("sendMessage") == 1


async def test_an_unknown_chat_and_a_wrong_token_are_not_retried() -> None:
    with start_fake_bot(TOKEN, known_chats=[42]) as fake:
        async with client_for(fake) as client:
            with pytest.raises(TelegramError, match="chat 7: Bad Request: chat not found") as lost:
                await client.send_message(7, "who?")
            assert "xray users link-code" in str(lost.value.hint)  # what links a chat: /start CODE
        async with client_for(fake, token=WRONG_TOKEN) as impostor:
            with pytest.raises(TelegramError, match="Unauthorized") as raised:
                await impostor.send_message(42, "hi")
        assert fake.requests("sendMessage") == 1  # the wrong token never reached the method
    assert raised.value.error_code == 401
    assert_no_token(str(raised.value))


async def test_the_token_never_appears_in_logs_errors_or_reprs(
        bot: FakeBot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[TelegramError] = []
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    bot.fail_next(1, status=500)
    bot.block(42)
    async with client_for(bot, max_retries=1) as client, \
            TelegramClient(TOKEN, api_url=f"http://127.0.0.1:{closed_port}", max_retries=1,
                           backoff_s=0.01) as unreachable:
        for call in (client.send_message(42, "blocked after a 500"), unreachable.send_message(42, "x")):
            with pytest.raises(TelegramError) as raised:
                await call
            errors.append(raised.value)

        async def connect_times_out(*args: object, **kwargs: object) -> None:
            raise TimeoutError
        # aiohttp turns this into ConnectionTimeoutError("Connection timeout to host <full URL>")
        monkeypatch.setattr(aiohttp.TCPConnector, "connect", connect_times_out)
        with pytest.raises(TelegramError, match="Connection timeout to host") as raised:
            await client.send_message(42, "x")
        errors.append(raised.value)
        reprs = [repr(client), repr(unreachable), repr(bot)]
    assert "<redacted>" in str(errors[-1])  # the URL was there, and the token was cut out of it
    for error in errors:
        assert error.__cause__ is None and error.__context__ is None  # no chain back to aiohttp's
        assert_no_token(str(error), repr(error), "".join(traceback.format_exception(error)))
    assert_no_token(caplog.text, *reprs)
    assert "retry 1 of 1" in caplog.text  # the retries were logged, without the token


# The notifier.


async def test_each_event_reaches_its_users_chat_formatted_and_escaped(bot: FakeBot) -> None:
    notifier = notifier_for(bot, admin_chat_id=999)
    await notifier.start()
    notifier.fill(ALICE, "BTC/USDT", "buy", 0.5, 43000.12, pnl=12.3)
    notifier.error(BOB, "order <rejected> by exchange & retried")
    notifier.kill_switch(BOB, "daily loss 5% > limit")
    notifier.kill_switch(None, "combined loss 21%")
    notifier.daily_summary(ALICE, {"trades": 12, "pnl": -3.25, "win_rate": 0.5})
    await notifier.stop(drain=True)
    assert [m.plain for m in bot.messages(101)] == [
        "🟢 BUY 0.5 BTC/USDT @ 43000.12\nPnL: +12.3",
        "📊 Daily summary\nTrades: 12\nPnl: -3.25\nWin rate: 0.5"]
    assert [m.plain for m in bot.messages(202)] == [
        "⚠️ Error\norder <rejected> by exchange & retried",
        "🛑 Kill switch: your trading is stopped\ndaily loss 5% > limit"]
    assert [m.plain for m in bot.messages(999)] == [  # the global kill switch goes to the admin chat
        "🛑 Global kill switch: all trading is stopped\ncombined loss 21%"]
    assert (notifier.sent, notifier.failed, notifier.dropped) == (5, 0, 0)


async def test_a_blocked_chat_is_counted_as_failed_while_other_chats_get_theirs(
        bot: FakeBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bot.block(BOB.telegram_chat_id)
    notifier = notifier_for(bot)
    await notifier.start()
    for user in (ALICE, BOB, CAROL):
        notifier.fill(user, "SOL/USDT", "sell", 3, 151.5)  # never raises into the trading loop
    await notifier.stop(drain=True)
    assert [len(bot.messages(user.telegram_chat_id)) for user in (ALICE, BOB, CAROL)] == [1, 0, 1]
    assert (notifier.sent, notifier.failed) == (2, 1)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "chat 202" in warning.getMessage() and "bot was blocked by the user" in warning.getMessage()
    assert_no_token(caplog.text)


async def test_without_a_token_events_are_only_logged(bot: FakeBot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xray_runtime.notify")
    notifier = Notifier(TelegramSettings(bot_token=None, api_url=bot.api_url))
    await notifier.start()
    notifier.fill(ALICE, "BTC/USDT", "buy", 1, 40000)
    notifier.error(BOB, "exchange down")
    await notifier.stop()
    assert not notifier.enabled
    assert bot.requests("sendMessage") == 0 and bot.messages() == []
    assert notifier.stats().logged == 2 and notifier.sent == 0
    logged = [(r.notify_event, r.user_id, r.chat_id) for r in caplog.records if hasattr(r, "notify_event")]
    assert logged == [("fill", "alice", 101), ("error", "bob", 202)]


async def test_users_without_a_chat_id_are_skipped(bot: FakeBot) -> None:
    notifier = notifier_for(bot)
    await notifier.start()
    notifier.error(User("dave", None), "no chat")
    notifier.error(ALICE, "has a chat")
    await notifier.stop()
    assert notifier.stats().skipped == 1
    assert [m.chat_id for m in bot.messages()] == [101]


async def test_a_backed_up_burst_of_fills_for_one_chat_becomes_one_message(bot: FakeBot) -> None:
    notifier = notifier_for(bot, per_chat_interval_s=1.0)
    for i in range(20):  # queued before the sender runs: the queue has backed up
        notifier.fill(ALICE, "ETH/USDT", "sell", i + 1, 2000 + i)
    await notifier.start()
    await notifier.stop(drain=True)
    [message] = bot.messages(101)
    lines = message.plain.split("\n")
    assert lines[0] == "20 fills"
    assert lines[1:] == [f"🔴 SELL {i + 1} ETH/USDT @ {2000 + i}" for i in range(20)]
    assert (notifier.sent, notifier.stats().coalesced) == (1, 19)


async def test_only_consecutive_fills_coalesce_so_the_order_of_events_is_kept(bot: FakeBot) -> None:
    notifier = notifier_for(bot)
    for i in range(3):
        notifier.fill(ALICE, "ETH/USDT", "buy", 1, 2000 + i)
    notifier.kill_switch(ALICE, "max drawdown")
    notifier.fill(ALICE, "ETH/USDT", "sell", 3, 1990, pnl=-30)
    await notifier.start()
    await notifier.stop(drain=True)
    assert [m.plain.split("\n")[0] for m in bot.messages(101)] == [
        "3 fills", "🛑 Kill switch: your trading is stopped", "🔴 SELL 3 ETH/USDT @ 1990"]


async def test_a_full_queue_drops_the_oldest_events(bot: FakeBot) -> None:
    notifier = notifier_for(bot, queue_size=3)
    users = [User(f"u{i}", 1000 + i) for i in range(5)]
    for user in users:
        notifier.error(user, f"problem of {user.user_id}")
    await notifier.start()
    await notifier.stop(drain=True)
    assert notifier.dropped == 2
    assert sorted(m.chat_id for m in bot.messages()) == [1002, 1003, 1004]


async def test_stop_with_drain_delivers_everything_queued(bot: FakeBot) -> None:
    notifier = notifier_for(bot)
    await notifier.start()
    users = [User(f"u{i}", 2000 + i) for i in range(10)]
    for user in users:
        notifier.error(user, "first")
        notifier.fill(user, "BTC/USDT", "buy", 1, 40000)
    await notifier.stop(drain=True)
    for user in users:
        assert [m.plain.split("\n")[0] for m in bot.messages(user.telegram_chat_id)] == [
            "⚠️ Error", "🟢 BUY 1 BTC/USDT @ 40000"]
    assert (notifier.sent, notifier.failed, notifier.dropped) == (20, 0, 0)


async def test_stop_without_drain_counts_the_undelivered_as_dropped(bot: FakeBot) -> None:
    notifier = notifier_for(bot)
    for user in (ALICE, BOB, CAROL):
        notifier.error(user, "pending")
    await notifier.start()
    await notifier.stop(drain=False)
    notifier.error(ALICE, "after stop")  # refused quietly, counted
    assert bot.messages() == []
    assert (notifier.sent, notifier.dropped) == (0, 4)


async def test_an_overlong_reason_is_cut_to_telegrams_limit_and_still_delivered(bot: FakeBot) -> None:
    notifier = notifier_for(bot)
    await notifier.start()
    notifier.error(ALICE, "<&>" * 5000)
    await notifier.stop()
    [message] = bot.messages(101)
    assert message.plain.startswith("⚠️ Error\n<&><&>") and message.plain.endswith("…")


def test_a_pacer_hands_out_slots_interval_apart() -> None:
    pacer = Pacer(1.0)
    assert [pacer.reserve(0.0), pacer.reserve(0.0), pacer.reserve(0.5)] == [0.0, 1.0, 1.5]
    assert pacer.reserve(10.0) == 0.0  # idle long enough: no wait, no burst credit either
    assert pacer.reserve(10.2) == pytest.approx(0.8)
