"""The fake Telegram Bot API itself: it parses HTML the way Telegram does, so a formatter that forgets
to escape fails here as it would against the real Bot API.

How the runtime's client and notifier behave against it is specified in tests/runtime/test_telegram.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from xray_runtime.notify import TelegramClient, TelegramError
from xray_sim.telegram.fake_bot import FakeBot, start_fake_bot

TOKEN = "7012345678:AAHfake-Secret_tokenValue0123456789"


@pytest.fixture
def bot() -> Iterator[FakeBot]:
    with start_fake_bot(TOKEN) as fake:
        yield fake


def client_for(bot: FakeBot) -> TelegramClient:
    return TelegramClient(TOKEN, api_url=bot.api_url, backoff_s=0.01)


async def test_the_fake_refuses_html_that_telegram_cannot_parse(bot: FakeBot) -> None:
    async with client_for(bot) as client:
        with pytest.raises(TelegramError, match="can't parse entities"):
            await client.send_message(42, "1 < 2")
        with pytest.raises(TelegramError, match="can't parse entities"):
            await client.send_message(42, "<b>unclosed")
        await client.send_message(42, "1 < 2", parse_mode=None)
    assert [m.plain for m in bot.messages(42)] == ["1 < 2"]
