"""A loopback fake of the Telegram Bot API, for tests and the demo (never the real Telegram).

It answers `/bot<token>/sendMessage`, `getMe`, `getUpdates` (long polling), `deleteWebhook` and
`setMyCommands` for one configured token in the Bot API's exact JSON shapes, records every accepted
message per chat, delivers what a test makes a user type (`user_says`) to a bot polling `getUpdates`,
and can be told to fail the way Telegram does:

    with start_fake_bot("123:ABC") as bot:
        client = TelegramClient("123:ABC", api_url=bot.api_url)
        ...
        bot.messages(42)            # what chat 42 received, in order

- a wrong token: 401 `{"ok":false,"error_code":401,"description":"Unauthorized"}`;
- `block(chat_id)` (or `blocked_chats=`): 403 "Forbidden: bot was blocked by the user";
- `known_chats=`: any other chat gets 400 "Bad Request: chat not found";
- `fail_next(n, status=429, retry_after=1)`: the next n sendMessage calls answer 429 with
  `parameters.retry_after`; 500 answers Telegram's JSON error, 502/503/504 an nginx HTML page (what
  Telegram's front end really returns when the API is down);
- `disconnect_next(n)`: the next n sendMessage calls lose their connection without an answer;
- HTML messages are parsed like Telegram does: unsupported tags, unbalanced tags and bare `<`/`&`
  are 400 "Bad Request: can't parse entities: ...", so a formatter that forgets to escape fails here;
- texts longer than 4096 UTF-16 code units are 400 "Bad Request: message is too long".

`user_says(chat_id, "/start ABC")` queues an Update whose message carries the `bot_command` entity
Telegram adds to a leading "/command", so a library's command routing sees what it would in
production; `getUpdates` answers pending updates from `offset` on (confirming those below it) and,
when there are none, holds the request up to its `timeout` seconds, like Telegram's long polling.

Handlers run on the server's thread; everything the tests read goes through one lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from xray_runtime.notify.telegram import MAX_TEXT_UTF16, utf16_len
from xray_sim.loopback import LoopbackServer

__all__ = ["FakeBot", "SentMessage", "parse_html", "start_fake_bot"]

ChatId = int | str

# Tags the Bot API's HTML parse mode accepts (https://core.telegram.org/bots/api#html-style).
_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                   "tg-emoji", "code", "pre", "blockquote"})
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)((?:\s[^<>]*)?)>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
# Telegram's front end answers an HTML page, not JSON, when the API behind it is down.
_NGINX = "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}" \
         "</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"


def parse_html(text: str) -> str:
    """The text a user sees for an HTML-mode message; raises ValueError with Telegram's wording
    ("can't parse entities: ...") where Telegram would refuse it."""
    plain: list[str] = []
    open_tags: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "<":
            tag = _TAG.match(text, i)
            if tag is None:
                raise ValueError(f"can't parse entities: Unexpected character at byte offset {i}")
            closing, name = tag.group(1) == "/", tag.group(2).lower()
            if name not in _TAGS:
                raise ValueError(f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {i}')
            if closing:
                if not open_tags or open_tags[-1] != name:
                    raise ValueError(f'can\'t parse entities: Unexpected end tag "{name}" at byte offset {i}')
                open_tags.pop()
            else:
                open_tags.append(name)
            i = tag.end()
        elif char == "&":
            entity = _ENTITY.match(text, i)
            if entity is None:
                raise ValueError(f"can't parse entities: Unsupported HTML entity at byte offset {i}")
            plain.append(html.unescape(entity.group(0)))
            i = entity.end()
        else:
            plain.append(char)
            i += 1
    if open_tags:
        raise ValueError("can't parse entities: Can't find end tag corresponding to start tag "
                         f'"{open_tags[-1]}"')
    return "".join(plain)


@dataclass(frozen=True)
class SentMessage:
    """One message the fake accepted: `text` as the client sent it, `plain` as the user sees it."""

    message_id: int
    chat_id: ChatId
    text: str
    plain: str
    parse_mode: str | None
    date: int
    received_s: float = 0.0  # time.monotonic() when the fake accepted it (for pacing checks)


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: int | float
    disconnect: bool = False


class FakeBot(LoopbackServer):
    """The fake Bot API served from its own thread. Every public method may be called from any
    thread; use as a context manager or call `start()` and `stop()`."""

    def __init__(self, token: str, *, host: str = "127.0.0.1", port: int = 0,
                 blocked_chats: Iterable[ChatId] = (), known_chats: Iterable[ChatId] | None = None,
                 bot_username: str = "xray_test_bot") -> None:
        self._token = token
        self._lock = threading.Lock()
        self._messages: list[SentMessage] = []
        self._blocked = {_chat_key(chat) for chat in blocked_chats}
        self._known = None if known_chats is None else {_chat_key(chat) for chat in known_chats}
        self._failures: deque[_Failure] = deque()
        self._requests: dict[str, int] = {}
        self._message_ids: dict[ChatId, itertools.count[int]] = {}
        self._updates: list[dict[str, Any]] = []  # not yet confirmed by a getUpdates offset
        self._update_ids = itertools.count(1)
        self._arrived: asyncio.Event | None = None  # on the server's loop: wakes a long poll
        self.commands: list[dict[str, Any]] = []  # the last setMyCommands
        bot_id = token.split(":", 1)[0]
        self.bot = {"id": int(bot_id) if bot_id.isdigit() else 1, "is_bot": True, "first_name": "X-Ray",
                    "username": bot_username}
        super().__init__(self._app(), host, port, name="fake Telegram Bot API", shutdown_timeout_s=0.5)

    def __repr__(self) -> str:  # the token is a secret even in tests: never print it
        return f"FakeBot(api_url={self.base_url!r})"

    @property
    def api_url(self) -> str:
        """What `TelegramSettings.api_url` should be to talk to this fake."""
        return self.base_url

    @property
    def blocked_chats(self) -> frozenset[ChatId]:
        with self._lock:
            return frozenset(self._blocked)

    def messages(self, chat_id: ChatId | None = None) -> list[SentMessage]:
        """Accepted messages in arrival order: all of them, or one chat's."""
        with self._lock:
            if chat_id is None:
                return list(self._messages)
            key = _chat_key(chat_id)
            return [message for message in self._messages if message.chat_id == key]

    def requests(self, method: str = "sendMessage") -> int:
        """Calls of `method` with the right token, failed ones included (counts retries)."""
        with self._lock:
            return self._requests.get(method, 0)

    def block(self, chat_id: ChatId) -> None:
        """The user of `chat_id` blocks the bot: sendMessage to it answers 403."""
        with self._lock:
            self._blocked.add(_chat_key(chat_id))

    def unblock(self, chat_id: ChatId) -> None:
        with self._lock:
            self._blocked.discard(_chat_key(chat_id))

    def fail_next(self, n: int = 1, status: int = 429, retry_after: int | float = 1) -> None:
        """The next `n` sendMessage calls answer `status` (429 carries `retry_after` seconds)."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after) for _ in range(n))

    def disconnect_next(self, n: int = 1) -> None:
        """The next `n` sendMessage calls lose their connection without any answer."""
        with self._lock:
            self._failures.extend(_Failure(0, 0, disconnect=True) for _ in range(n))

    def user_says(self, chat_id: int, text: str, *, first_name: str = "Trader",
                  chat_type: str | None = None) -> int:
        """A Telegram user in chat `chat_id` sends `text` to the bot; returns the Update's id. A
        private chat's user id is the chat id (as in Telegram); a negative id is a group."""
        kind = chat_type or ("private" if chat_id > 0 else "group")
        chat: dict[str, Any] = ({"id": chat_id, "first_name": first_name, "type": kind} if kind == "private"
                                else {"id": chat_id, "title": "X-Ray group", "type": kind})
        sender = {"id": abs(chat_id), "is_bot": False, "first_name": first_name}
        with self._lock:
            update_id = next(self._update_ids)
            message: dict[str, Any] = {"message_id": update_id, "from": sender, "chat": chat,
                                       "date": int(time.time()), "text": text}
            command = re.match(r"/[A-Za-z0-9_]+(@\w+)?", text)
            if command:
                message["entities"] = [{"type": "bot_command", "offset": 0,
                                        "length": utf16_len(command.group(0))}]
            self._updates.append({"update_id": update_id, "message": message})
        self.call(self._wake)
        return update_id

    def pending_updates(self) -> int:
        """Updates the bot has not confirmed yet (a getUpdates with a higher offset confirms)."""
        with self._lock:
            return len(self._updates)

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    def clear(self) -> None:
        """Forget messages, counts and pending failures (blocked chats stay)."""
        with self._lock:
            self._messages.clear()
            self._requests.clear()
            self._failures.clear()
            self._message_ids.clear()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self._token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        with self._lock:
            self._requests[method] = self._requests.get(method, 0) + 1
        if method == "getMe":
            return _ok(self.bot)
        if method in ("deleteWebhook", "setMyCommands"):
            params = await _params(request)
            if method == "setMyCommands":
                commands = params.get("commands", "[]")
                self.commands = json.loads(commands) if isinstance(commands, str) else list(commands)
            return web.json_response({"ok": True, "result": True})
        if method == "getUpdates":
            return await self._get_updates(await _params(request))
        if method != "sendMessage":
            return _error(404, "Not Found")
        with self._lock:
            failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            return _failure_response(request, failure)
        try:
            params = await _params(request)
        except ValueError:
            return _error(400, "Bad Request: can't parse JSON")
        return self._send_message(params)

    async def _get_updates(self, params: dict[str, Any]) -> web.Response:
        try:
            offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
            timeout = float(params.get("timeout") or 0)
        except ValueError:
            return _error(400, "Bad Request: wrong parameter")
        if self._arrived is None:
            self._arrived = asyncio.Event()
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                found = self._updates[:max(1, min(limit, 100))]
            left = deadline - time.monotonic()
            if found or left <= 0:
                return web.json_response({"ok": True, "result": found})
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def _send_message(self, params: dict[str, Any]) -> web.Response:
        raw_chat, text = params.get("chat_id"), params.get("text")
        if raw_chat in (None, ""):
            return _error(400, "Bad Request: chat_id is empty")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: message text is empty")
        chat_id = _chat_key(raw_chat)
        parse_mode = params.get("parse_mode") or None
        with self._lock:
            blocked = chat_id in self._blocked
            unknown = self._known is not None and chat_id not in self._known
        if unknown:
            return _error(400, "Bad Request: chat not found")
        if blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        try:
            plain = parse_html(text) if str(parse_mode).upper() == "HTML" else text
        except ValueError as error:
            return _error(400, f"Bad Request: {error}")
        if utf16_len(plain) > MAX_TEXT_UTF16:
            return _error(400, "Bad Request: message is too long")
        with self._lock:
            message_id = next(self._message_ids.setdefault(chat_id, itertools.count(1)))
            message = SentMessage(message_id, chat_id, text, plain, parse_mode, int(time.time()),
                                  time.monotonic())
            self._messages.append(message)
        return _ok({"message_id": message.message_id, "from": self.bot, "chat": _chat(chat_id),
                    "date": message.date, "text": plain})


def _chat_key(chat_id: object) -> ChatId:
    """Telegram accepts a chat id as a number or a numeric string, or a channel's "@username"."""
    text = str(chat_id).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _chat(chat_id: ChatId) -> dict[str, Any]:
    if isinstance(chat_id, str):
        return {"id": -1001000000000, "title": chat_id.lstrip("@"), "username": chat_id.lstrip("@"),
                "type": "channel"}
    if chat_id < 0:
        return {"id": chat_id, "title": "X-Ray group", "type": "supergroup" if chat_id < -10**12 else "group"}
    return {"id": chat_id, "first_name": "Trader", "type": "private"}


async def _params(request: web.Request) -> dict[str, Any]:
    """Parameters the way the Bot API takes them: query string, form or JSON body."""
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = json.loads(await request.text() or "{}")
        if not isinstance(body, dict):
            raise ValueError("the JSON body is not an object")
        params.update(body)
    elif request.can_read_body:
        params.update(await request.post())
    return params


def _ok(result: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=code)


def _failure_response(request: web.Request, failure: _Failure) -> web.StreamResponse:
    if failure.disconnect:
        if request.transport is not None:
            request.transport.abort()  # the client sees the server vanish mid-request
        return web.Response(status=500)  # never delivered
    if failure.status == 429:
        return _error(429, f"Too Many Requests: retry after {failure.retry_after}",
                      {"retry_after": failure.retry_after})
    if failure.status in (502, 503, 504):
        reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
        page = _NGINX.format(code=failure.status, reason=reason[failure.status])
        return web.Response(status=failure.status, text=page, content_type="text/html")
    descriptions = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                    409: "Conflict", 500: "Internal Server Error"}
    return _error(failure.status, descriptions.get(failure.status, f"Error {failure.status}"))


def start_fake_bot(token: str, port: int = 0, *, host: str = "127.0.0.1",
                   blocked_chats: Iterable[ChatId] = (),
                   known_chats: Iterable[ChatId] | None = None) -> FakeBot:
    """Start the fake Bot API in a background thread; returns once it accepts connections. The
    result is a context manager that stops it."""
    return FakeBot(token, host=host, port=port, blocked_chats=blocked_chats, known_chats=known_chats).start()
