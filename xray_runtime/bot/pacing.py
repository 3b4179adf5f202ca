"""The bot's outgoing requests paced to Telegram's limits, the same ones the notifier keeps.

Telegram allows about one message per second to a chat, twenty per minute to a group, and thirty per
second over all chats of a bot; beyond that it answers 429 with `retry_after`. Every request the bot
makes to a chat waits for a slot of its chat and of the bot (`Pacer`, shared with the notifier's
design: concurrent callers queue up instead of bursting); a 429 is waited out and tried again, at
most `max_retries` times. Requests not bound to a chat (getUpdates, getMe) go straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from xray_runtime.notify.notifier import Pacer

__all__ = ["PacedLimiter"]

_Result = bool | dict[str, Any] | list[dict[str, Any]]


class PacedLimiter(BaseRateLimiter[int]):
    def __init__(self, per_chat_interval_s: float = 1.0, group_interval_s: float = 3.0,
                 global_rate_per_s: float = 30.0, max_retries: int = 3,
                 max_retry_after_s: float = 60.0) -> None:
        self.per_chat_interval_s = per_chat_interval_s
        self.group_interval_s = group_interval_s
        self.max_retries = max_retries
        self.max_retry_after_s = max_retry_after_s
        self._global = Pacer(1.0 / global_rate_per_s)
        self._chats: dict[str, Pacer] = {}

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        self._chats.clear()

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, _Result]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> _Result:
        chat = data.get("chat_id")
        for attempt in range(self.max_retries + 1):
            if chat is not None:
                now = time.monotonic()
                wait = max(self._global.reserve(now), self._chat(chat, now).reserve(now))
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as flood:
                delay = flood.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else float(delay)
                if attempt == self.max_retries or seconds > self.max_retry_after_s:
                    raise
                await asyncio.sleep(seconds)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _chat(self, chat: object, now: float) -> Pacer:
        key = str(chat)
        pacer = self._chats.get(key)
        if pacer is None:
            if len(self._chats) > 10_000:  # forget chats whose slots are long past
                self._chats = {k: p for k, p in self._chats.items() if p.next_free > now}
            group = key.startswith("-")  # groups and channels have negative ids
            pacer = self._chats[key] = Pacer(self.group_interval_s if group else self.per_chat_interval_s)
        return pacer
