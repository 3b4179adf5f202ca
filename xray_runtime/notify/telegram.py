"""An async Telegram Bot API client: sendMessage and getMe, with Telegram's retry rules.

Telegram answers every call with `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`. This client:
- 429 (flood control): waits `parameters.retry_after` seconds and tries again;
- 5xx (often an nginx HTML page, not JSON), timeouts and connection errors: exponential backoff;
- anything else (400 chat not found, 403 bot blocked by the user, 401 bad token): no retry;
at most `max_retries` retries, then a `TelegramError` naming the chat and Telegram's description.

The bot token is part of every URL (`/bot<token>/method`), so every text that may leave this module
(log lines, exception messages, reprs) goes through `redact()`, including aiohttp's own exceptions
(`ConnectionTimeoutError` embeds the full URL). Those are re-raised outside their `except` block so
no traceback chains back to the original. One `aiohttp.ClientSession`, created on first use inside
the running loop, serves every call until `close()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from xray_core.errors import ConfigError, XrayError
from xray_runtime.settings import TelegramSettings

__all__ = ["MAX_TEXT_UTF16", "TelegramClient", "TelegramError", "utf16_len"]

log = logging.getLogger(__name__)

ChatId = int | str
MAX_TEXT_UTF16 = 4096  # Telegram's limit on a message's text, in UTF-16 code units after parsing
_REDACTED = "<redacted>"


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts two)."""
    return len(text.encode("utf-16-le")) // 2


class TelegramError(XrayError):
    """Telegram did not take a call. `retryable` says whether trying later could help (429, 5xx,
    network) or not (the chat is gone, the user blocked the bot, the token is wrong)."""

    def __init__(self, problem: str, hint: str | None = None, *, chat_id: ChatId | None = None,
                 error_code: int | None = None, description: str = "", retryable: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(problem, hint)
        self.chat_id = chat_id
        self.error_code = error_code
        self.description = description
        self.retryable = retryable
        self.retry_after = retry_after


class TelegramClient:
    """Calls the Bot API at `api_url` with `token`. Use `async with`, or call `close()` when done."""

    def __init__(self, token: SecretStr | str, *, api_url: str = "https://api.telegram.org",
                 timeout_s: float = 10.0, max_retries: int = 3, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0, max_retry_after_s: float = 60.0,
                 connection_limit: int = 32) -> None:
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        if not self._token.get_secret_value().strip():
            raise ConfigError("the Telegram bot token is empty", "set XRAY_TELEGRAM_BOT_TOKEN")
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        # A flood wait longer than this is not worth holding a sender for: give up, report it.
        self.max_retry_after_s = max_retry_after_s
        self._connection_limit = connection_limit
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: TelegramSettings, **options: Any) -> TelegramClient:
        if settings.bot_token is None:
            raise ConfigError("no Telegram bot token is configured", "set XRAY_TELEGRAM_BOT_TOKEN")
        return cls(settings.bot_token, api_url=settings.api_url, timeout_s=settings.timeout_s,
                   max_retries=settings.max_retries, **options)

    def __repr__(self) -> str:
        return f"TelegramClient(api_url={self.redact(self.api_url)!r}, token={_REDACTED})"

    def redact(self, text: str) -> str:
        """`text` with the token (raw or percent-encoded) replaced by a placeholder."""
        token = self._token.get_secret_value()
        for form in {token, quote(token, safe=""), quote(token)}:
            text = text.replace(form, _REDACTED)
        return text

    async def send_message(self, chat_id: ChatId, text: str, parse_mode: str | None = "HTML", *,
                           disable_notification: bool = False) -> dict[str, Any]:
        """Send `text` to `chat_id`; returns Telegram's Message object (`message_id`, `chat`, ...)."""
        payload: dict[str, Any] = {"chat_id": chat_id, "text": text}
        if parse_mode:
            payload["parse_mode"] = parse_mode
        if disable_notification:
            payload["disable_notification"] = True
        result = await self._call("sendMessage", payload, chat_id)
        return dict(result)

    async def get_me(self) -> dict[str, Any]:
        """The bot's own User object: a cheap check that the token is valid."""
        return dict(await self._call("getMe", {}, None))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self.close()

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                connector=aiohttp.TCPConnector(limit=self._connection_limit))
        return self._session

    async def _call(self, method: str, payload: dict[str, Any], chat_id: ChatId | None) -> Any:
        target = f"chat {chat_id}" if chat_id is not None else "the bot"
        for attempt in range(self.max_retries + 1):
            error = await self._attempt(method, payload, target)
            if isinstance(error, _Ok):
                return error.result
            last = attempt == self.max_retries
            if not error.retryable or last:
                raise error
            delay = error.retry_after if error.retry_after is not None else min(
                self.backoff_max_s, self.backoff_s * 2 ** attempt)
            if delay > self.max_retry_after_s:
                raise error
            log.warning("telegram %s to %s failed (%s); retry %d of %d in %.2f s", method, target,
                        error.description, attempt + 1, self.max_retries, delay,
                        extra={"chat_id": chat_id, "telegram_method": method})
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(self, method: str, payload: dict[str, Any], target: str) -> _Ok | TelegramError:
        """One HTTP call; returns the result or the error to raise (never raises aiohttp's own)."""
        url = f"{self.api_url}/bot{self._token.get_secret_value()}/{method}"
        log.debug("telegram %s to %s", method, target)
        failure: str | None = None
        invalid = False
        try:
            async with self._session_now().post(url, json=payload, allow_redirects=False) as response:
                status, body = response.status, await response.text()
        except aiohttp.InvalidURL:  # carries the URL: report without it, and retrying cannot help
            failure, invalid = "the Bot API URL is invalid", True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            failure = f"{type(exc).__name__}: {self.redact(str(exc)) or 'no detail'}"
        if failure is not None:  # built here, outside `except`, so no traceback chains to aiohttp's
            if invalid:
                return TelegramError(f"cannot call Telegram {method} for {target}: {failure}",
                                     "check XRAY_TELEGRAM_API_URL", chat_id=_chat_of(payload),
                                     description=failure)
            return TelegramError(f"Telegram {method} to {target} failed: {failure}",
                                 "check the network and XRAY_TELEGRAM_API_URL; it is retried",
                                 chat_id=_chat_of(payload), description=failure, retryable=True)
        return self._interpret(method, target, payload, status, body)

    def _interpret(self, method: str, target: str, payload: dict[str, Any], status: int,
                   body: str) -> _Ok | TelegramError:
        answer = _json_object(body)
        if answer is not None and answer.get("ok") is True:
            return _Ok(answer.get("result"))
        code = int(answer.get("error_code", status)) if answer is not None else status
        description = self.redact(str(answer.get("description", ""))) if answer is not None else ""
        description = description or f"HTTP {status} without a Bot API answer"
        parameters = answer.get("parameters") if answer is not None else None
        retry_after = _number(parameters.get("retry_after")) if isinstance(parameters, dict) else None
        chat_id = _chat_of(payload)
        if code == 429:
            return TelegramError(f"Telegram flood control for {target}: {description}",
                                 "send fewer messages; it is retried after retry_after",
                                 chat_id=chat_id, error_code=code, description=description,
                                 retryable=True, retry_after=retry_after if retry_after is not None else 1.0)
        if code >= 500 or status >= 500:
            return TelegramError(f"Telegram {method} to {target} failed: {description} (error {code})",
                                 "Telegram is having trouble; it is retried with backoff",
                                 chat_id=chat_id, error_code=code, description=description, retryable=True)
        return TelegramError(f"Telegram refused {method} to {target}: {description} (error {code})",
                             _hint(code, description), chat_id=chat_id, error_code=code,
                             description=description)


class _Ok:
    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result


def _hint(code: int, description: str) -> str:
    lowered = description.lower()
    if code == 401 or (code == 404 and "chat" not in lowered):  # a wrong token or API URL
        return "check XRAY_TELEGRAM_BOT_TOKEN (from @BotFather) and XRAY_TELEGRAM_API_URL"
    if "blocked" in lowered or "deactivated" in lowered:
        return "the user must unblock the bot; nothing is sent to this chat until then"
    if "chat not found" in lowered:
        return ("the chat is not the user's: give them a code (`xray users link-code ID`) to send to the "
                "bot as /start CODE")
    if "parse entities" in lowered:
        return "the message's HTML is invalid: escape <, > and & outside tags"
    return "the message was not sent and is not retried"


def _json_object(body: str) -> dict[str, Any] | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _chat_of(payload: dict[str, Any]) -> ChatId | None:
    chat = payload.get("chat_id")
    return chat if isinstance(chat, int | str) else None
