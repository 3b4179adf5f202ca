"""Trading notifications to users' Telegram chats, off the trading loop's critical path.

The trading loop calls `fill`, `error`, `kill_switch` and `daily_summary`; each formats an HTML
message (every value escaped), puts it on a bounded `asyncio.Queue` and returns at once: it never
awaits Telegram and never sees its exceptions. Background tasks deliver:

- a dispatcher moves queued events into per-chat mailboxes; while a chat's next message waits for
  its turn, further fills for that chat join it, so a burst of fills becomes one message
  ("5 fills" and a line each) instead of a backlog Telegram would throttle;
- each chat is paced to one message per `per_chat_interval_s` (Telegram: about 1 message/s per
  chat) and all chats together to `global_rate_per_s` (Telegram: 30 messages/s per bot), with at
  most `concurrency` requests in flight;
- when the queue is full the oldest event is dropped, and `dropped` counts it.

Counters: `sent` and `failed` count Telegram messages; `dropped`, `coalesced` (events merged into
an earlier message), `skipped` (users without a chat id) and `logged` (no token) count events.
Failures are logged with the chat id, never the token. Without a bot token nothing is sent: every
event is only logged, with structured fields (`notify_event`, `user_id`, `chat_id`).

The event methods must be called from the thread of the event loop that runs the notifier.
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import traceback
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Protocol

from xray_runtime.notify.telegram import MAX_TEXT_UTF16, ChatId, TelegramClient, TelegramError, utf16_len
from xray_runtime.settings import TelegramSettings

__all__ = ["Notifier", "NotifierStats", "NotifyUser", "Pacer"]

log = logging.getLogger(__name__)

_HEADER_RESERVE = 32  # room for the "<b>N fills</b>" header of a coalesced message
_SIDES = {"BUY": "🟢", "SELL": "🔴"}


class NotifyUser(Protocol):
    """Whatever the service knows a user as; only these two attributes are read."""

    @property
    def user_id(self) -> str | int: ...

    @property
    def telegram_chat_id(self) -> int | str | None: ...


@dataclass(frozen=True)
class NotifierStats:
    queued: int
    sent: int
    failed: int
    dropped: int
    coalesced: int
    skipped: int
    logged: int


class Pacer:
    """Spaces events at least `interval_s` apart. `reserve(now)` claims the next free slot and
    returns how long to wait for it, so concurrent callers queue up instead of bursting."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next = -math.inf

    @property
    def next_free(self) -> float:
        """When the next slot is free (a Pacer past it holds no state worth keeping)."""
        return self._next

    def reserve(self, now: float) -> float:
        slot = max(now, self._next)
        self._next = slot + self.interval_s
        return slot - now


@dataclass(frozen=True)
class _Event:
    kind: str
    chat_id: ChatId
    user_id: object
    text: str  # HTML of this event as a message of its own
    line: str = ""  # fills only: HTML of this fill as one line of a coalesced message


class _Batch:
    """One message waiting for its chat's turn: one event, or consecutive fills merged."""

    def __init__(self, event: _Event) -> None:
        self.events = [event]
        self._size = _HEADER_RESERVE + utf16_len(event.line)

    def take(self, event: _Event) -> bool:
        if self.events[0].kind != "fill" or event.kind != "fill":
            return False
        size = self._size + 1 + utf16_len(event.line)
        if size > MAX_TEXT_UTF16:
            return False
        self.events.append(event)
        self._size = size
        return True

    def text(self) -> str:
        if len(self.events) == 1:
            return self.events[0].text
        return f"<b>{len(self.events)} fills</b>\n" + "\n".join(event.line for event in self.events)


@dataclass
class _Chat:
    pacer: Pacer
    pending: deque[_Batch] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Notifier:
    """Queues notifications and sends them in the background; see the module docstring."""

    def __init__(self, settings: TelegramSettings, *, admin_chat_id: ChatId | None = None,
                 queue_size: int = 1000, concurrency: int = 8, per_chat_interval_s: float = 1.0,
                 global_rate_per_s: float = 30.0, client: TelegramClient | None = None) -> None:
        token = settings.bot_token
        self.enabled = client is not None or (token is not None and bool(token.get_secret_value().strip()))
        if client is None and self.enabled:
            client = TelegramClient.from_settings(settings)
        self._client = client
        self.admin_chat_id = admin_chat_id  # where a global kill switch is reported
        self._queue_size = queue_size
        self._intake: asyncio.Queue[_Event] = asyncio.Queue(maxsize=queue_size)
        self._slots = asyncio.Semaphore(concurrency)
        self._per_chat_interval_s = per_chat_interval_s
        self._global = Pacer(1.0 / global_rate_per_s)
        self._chats: dict[ChatId, _Chat] = {}
        self._batches = 0  # messages waiting in mailboxes, bounded by queue_size too
        self._room = asyncio.Event()
        self._outstanding = 0  # events accepted and not yet sent, failed or dropped
        self._idle = asyncio.Event()
        self._idle.set()
        self._counts: Counter[str] = Counter()
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"Notifier(enabled={self.enabled}, stats={self.stats()})"

    @property
    def sent(self) -> int:
        return self._counts["sent"]

    @property
    def failed(self) -> int:
        return self._counts["failed"]

    @property
    def dropped(self) -> int:
        return self._counts["dropped"]

    def stats(self) -> NotifierStats:
        return NotifierStats(**{name: self._counts[name] for name in NotifierStats.__dataclass_fields__})

    # Events: synchronous, never raise, never wait.

    def fill(self, user: NotifyUser, symbol: str, side: str, amount: object, price: object,
             pnl: object = None) -> None:
        try:
            side_text = str(side).upper()
            what = f"{_esc(side_text)} {_esc(_num(amount))} {_esc(symbol)} @ {_esc(_num(price))}"
            icon = _SIDES.get(side_text, "•")
            profit = _esc(_signed(pnl)) if pnl is not None else None
            text = f"{icon} <b>{what}</b>" + (f"\nPnL: <b>{profit}</b>" if profit is not None else "")
            line = f"{icon} {what}" + (f" · PnL {profit}" if profit is not None else "")
            self._submit(user.telegram_chat_id, user.user_id, "fill", text, line)
        except Exception:  # a formatting bug must not reach the trading loop
            log.exception("telegram fill notification could not be queued")

    def error(self, user: NotifyUser, reason: str) -> None:
        try:
            text = f"⚠️ <b>Error</b>\n{_clip(reason, MAX_TEXT_UTF16 - 64)}"
            self._submit(user.telegram_chat_id, user.user_id, "error", text)
        except Exception:
            log.exception("telegram error notification could not be queued")

    def kill_switch(self, user_or_global: NotifyUser | None, reason: str) -> None:
        """`None` is the global kill switch: reported to `admin_chat_id` (only logged without one)."""
        try:
            detail = _clip(reason, MAX_TEXT_UTF16 - 96)
            if user_or_global is None:
                text = f"🛑 <b>Global kill switch</b>: all trading is stopped\n{detail}"
                self._submit(self.admin_chat_id, "global", "kill_switch", text)
            else:
                text = f"🛑 <b>Kill switch</b>: your trading is stopped\n{detail}"
                self._submit(user_or_global.telegram_chat_id, user_or_global.user_id, "kill_switch", text)
        except Exception:
            log.exception("telegram kill-switch notification could not be queued")

    def daily_summary(self, user: NotifyUser, stats: Mapping[str, object]) -> None:
        """`stats` in display order, e.g. {"trades": 12, "pnl": 31.5, "equity": 1031.5}."""
        try:
            lines = ["📊 <b>Daily summary</b>"]
            size = utf16_len(lines[0])
            for key, value in stats.items():
                line = f"{_esc(str(key).replace('_', ' ').capitalize())}: <b>{_esc(_num(value))}</b>"
                size += 1 + utf16_len(line)
                if size > MAX_TEXT_UTF16 - 8:
                    lines.append("…")
                    break
                lines.append(line)
            self._submit(user.telegram_chat_id, user.user_id, "daily_summary", "\n".join(lines))
        except Exception:
            log.exception("telegram daily summary could not be queued")

    # Life cycle.

    async def start(self) -> None:
        """Start delivering (events queued before this are kept). Without a token: nothing to do."""
        if not self.enabled or self._dispatcher is not None:
            return
        self._closed = False
        self._dispatcher = asyncio.create_task(self._dispatch(), name="telegram-notifier")

    async def stop(self, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Stop accepting events; with `drain`, first deliver what is queued (up to `timeout_s`).
        Whatever is left undelivered counts as dropped."""
        self._closed = True
        if drain and self._dispatcher is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout_s)
            except TimeoutError:
                log.warning("telegram notifier: %d notifications not delivered within %.0f s",
                            self._outstanding, timeout_s)
        tasks = [chat.task for chat in self._chats.values() if chat.task is not None]
        if self._dispatcher is not None:
            tasks.append(self._dispatcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dispatcher = None
        if self._outstanding:
            log.warning("telegram notifier stopped with %d notifications undelivered", self._outstanding)
            self._drop(self._outstanding)
        while not self._intake.empty():
            self._intake.get_nowait()
        self._chats.clear()
        self._batches = 0
        if self._client is not None:
            await self._client.close()

    # Internals.

    def _submit(self, chat_id: ChatId | None, user_id: object, kind: str, text: str, line: str = "") -> None:
        fields = {"notify_event": kind, "user_id": user_id, "chat_id": chat_id}
        if chat_id is None:
            self._counts["skipped"] += 1
            log.debug("telegram %s for user %s skipped: no chat id", kind, user_id, extra=fields)
            return
        if not self.enabled:
            self._counts["logged"] += 1
            log.info("telegram %s for user %s, chat %s (not sent: no bot token): %s", kind, user_id, chat_id,
                     text, extra=fields)
            return
        if self._closed:
            self._drop(1, accepted=False)
            log.warning("telegram %s for chat %s dropped: the notifier is stopped", kind, chat_id,
                        extra=fields)
            return
        if self._intake.full():  # drop the oldest: the newest state matters most to a trader
            oldest = self._intake.get_nowait()
            self._drop(1)
            dropped = self.dropped
            level = logging.WARNING if str(dropped).rstrip("0") == "1" else logging.DEBUG  # 1, 10, 100, ...
            log.log(level, "telegram queue full: dropped a %s for chat %s (%d dropped so far)", oldest.kind,
                    oldest.chat_id, dropped, extra={**fields, "chat_id": oldest.chat_id})
        self._intake.put_nowait(_Event(kind, chat_id, user_id, text, line))
        self._counts["queued"] += 1
        self._outstanding += 1
        self._idle.clear()

    def _drop(self, events: int, accepted: bool = True) -> None:
        """Count dropped events; accepted ones no longer wait for delivery."""
        self._counts["dropped"] += events
        if accepted:
            self._finish(events)

    def _finish(self, events: int) -> None:
        self._outstanding -= events
        if self._outstanding <= 0:
            self._outstanding = 0
            self._idle.set()

    async def _dispatch(self) -> None:
        while True:
            event = await self._intake.get()
            while self._batches >= self._queue_size:  # mailboxes full: the intake backs up and drops
                self._room.clear()
                await self._room.wait()
            self._route(event)

    def _route(self, event: _Event) -> None:
        chat = self._chats.get(event.chat_id)
        if chat is None:
            chat = self._chats[event.chat_id] = _Chat(Pacer(self._per_chat_interval_s))
        if chat.pending and chat.pending[-1].take(event):
            self._counts["coalesced"] += 1
        else:
            chat.pending.append(_Batch(event))
            self._batches += 1
        if chat.task is None:
            chat.task = asyncio.create_task(self._run_chat(event.chat_id, chat))

    async def _run_chat(self, chat_id: ChatId, chat: _Chat) -> None:
        loop = asyncio.get_running_loop()
        try:
            while chat.pending:
                await asyncio.sleep(chat.pacer.reserve(loop.time()))  # fills arriving meanwhile coalesce
                async with self._slots:
                    await asyncio.sleep(self._global.reserve(loop.time()))
                    batch = chat.pending.popleft()
                    self._batches -= 1
                    self._room.set()
                    await self._deliver(chat_id, batch)
        finally:  # no await between the empty check and here: _route sees the task gone
            chat.task = None

    async def _deliver(self, chat_id: ChatId, batch: _Batch) -> None:
        assert self._client is not None
        first = batch.events[0]
        fields = {"notify_event": first.kind, "user_id": first.user_id, "chat_id": chat_id}
        try:
            await self._client.send_message(chat_id, batch.text())
        except asyncio.CancelledError:
            self._drop(len(batch.events))
            raise
        except TelegramError as error:  # its text is already free of the token
            self._counts["failed"] += 1
            self._finish(len(batch.events))
            log.warning("telegram %s for user %s, chat %s failed: %s", first.kind, first.user_id, chat_id,
                        error, extra=fields)
        except Exception as error:  # a bug must not stop the sender; the traceback is redacted
            self._counts["failed"] += 1
            self._finish(len(batch.events))
            log.error("telegram %s for chat %s failed unexpectedly:\n%s", first.kind, chat_id,
                      self._client.redact("".join(traceback.format_exception(error))), extra=fields)
        else:
            self._counts["sent"] += 1
            self._finish(len(batch.events))


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _clip(text: str, budget: int) -> str:
    """`text` escaped, cut to `budget` UTF-16 units without splitting an entity."""
    escaped = _esc(text)
    if utf16_len(escaped) <= budget:
        return escaped
    out: list[str] = []
    size = 1  # the ellipsis
    for char in text:
        piece = _esc(char)
        size += utf16_len(piece)
        if size > budget:
            break
        out.append(piece)
    return "".join(out) + "…"


def _num(value: object) -> str:
    """Plain decimal notation, no exponent and no float noise: 43000.12, 0.00001234, 100."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return str(value)
    try:
        number = Decimal(format(value, ".12g")) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _signed(value: object) -> str:
    text = _num(value)
    positive = isinstance(value, int | float | Decimal) and not isinstance(value, bool) and value > 0
    return f"+{text}" if positive else text
