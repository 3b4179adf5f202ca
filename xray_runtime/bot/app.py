"""The two-way Telegram bot on python-telegram-bot: a chat links to one user with `/start CODE`, then
reads that user's state (`/status`, `/balance`, `/profit`, `/trades`) and steers it (`/pause`,
`/resume`, `/stop` with a confirmation).

Who a chat is comes only from the runtime's SQL (`LinkCodes.user_of`): every command looks the chat up
again, so unlinking or relinking takes effect at once, and no command takes a user id from the message,
so a chat can never name someone else. Unknown chats get a polite refusal and nothing else. Reads come
from `AccountView` (the journal), never the exchange; pause/resume/stop go through `UserControl`, the
same rows the trading loop and the web dashboard use. The stop's confirmation lives in this process
only: a restart forgets it, which is the safe side (nothing is sold without a fresh confirmation).

The bot's own base URL is `XRAY_TELEGRAM_API_URL` (a loopback fake in tests) and its requests are
paced to Telegram's limits (`PacedLimiter`). Run it with `xray bot`: one process per bot token, since
Telegram hands each update to one `getUpdates` caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.engine import Engine
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import Application, CommandHandler, ContextTypes, MessageHandler, filters

from xray_core.errors import ConfigError, XrayError
from xray_runtime.account_view import AccountView
from xray_runtime.bot import texts
from xray_runtime.bot.links import LinkCodes, LinkError
from xray_runtime.bot.pacing import PacedLimiter
from xray_runtime.settings import TelegramSettings
from xray_runtime.user_control import UserControl

__all__ = ["XrayBot", "build_application", "main", "run_bot"]

log = logging.getLogger(__name__)
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class XrayBot:
    """The command handlers, on the runtime's database `engine`."""

    def __init__(self, engine: Engine, *, link_ttl_s: float = 900.0, confirm_s: float = 60.0) -> None:
        self.links = LinkCodes(engine, link_ttl_s)
        self.view = AccountView(engine)
        self.control = UserControl(engine)
        self.confirm_s = confirm_s
        self._stop_asked: dict[int, tuple[str, float]] = {}  # chat -> (user, monotonic deadline)

    def handlers(self) -> list[tuple[str, Handler]]:
        return [("start", self.start), ("help", self.help), ("status", self.status),
                ("balance", self.balance), ("profit", self.profit), ("trades", self.trades),
                ("pause", self.pause), ("resume", self.resume), ("stop", self.stop),
                ("confirm_stop", self.confirm_stop)]

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = _chat_id(update)
        if chat is None:
            return
        code = " ".join(context.args or []).strip()
        if not code:
            user_id = await asyncio.to_thread(self.links.user_of, chat)
            text = (f"This chat is linked to <b>{texts.esc(user_id)}</b>. /help lists the commands."
                    if user_id else texts.START_WITHOUT_CODE)
            await _reply(update, text)
            return
        try:
            user_id = await asyncio.to_thread(self.links.redeem, code, chat)
        except LinkError as exc:
            await _reply(update, f"Sorry, {texts.esc(exc.problem)}. {texts.esc(exc.hint or '')}")
            return
        log.info("telegram chat linked", extra={"event": "telegram_linked", "user_id": user_id})
        await _reply(update, f"Linked: this chat now belongs to <b>{texts.esc(user_id)}</b> and receives "
                             "its notifications. /help lists the commands.")

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await _reply(update, texts.HELP)

    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await _reply(update, texts.status(await asyncio.to_thread(self.view.status, user_id)))

    async def balance(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await _reply(update, texts.balance(await asyncio.to_thread(self.view.holdings, user_id)))

    async def profit(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await _reply(update, texts.profit(await asyncio.to_thread(self.view.profit, user_id)))

    async def trades(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await _reply(update, texts.trades(await asyncio.to_thread(self.view.trades, user_id, 10)))

    async def pause(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await asyncio.to_thread(self.control.pause, user_id, "telegram")
            await _reply(update, "Paused: no new entries from the next bar on. Exits still happen. "
                                 "/resume trades again.")

    async def resume(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        if user_id is not None:
            await asyncio.to_thread(self.control.resume, user_id, "telegram")
            await _reply(update, "Resumed: X-Ray trades for you again from the next bar on.")

    async def stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        chat = _chat_id(update)
        if user_id is None or chat is None:
            return
        self._stop_asked[chat] = (user_id, time.monotonic() + self.confirm_s)
        await _reply(update, texts.STOP_ASK.format(seconds=int(self.confirm_s)))

    async def confirm_stop(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user_id = await self._user(update)
        chat = _chat_id(update)
        if user_id is None or chat is None:
            return
        asked = self._stop_asked.pop(chat, None)
        # The confirmation must come from the chat, for the user, that asked, and in time.
        if asked is None or asked[0] != user_id or time.monotonic() > asked[1]:
            await _reply(update, texts.NOTHING_TO_CONFIRM)
            return
        await asyncio.to_thread(self.control.stop, user_id, "telegram")
        log.warning("user stopped from telegram", extra={"event": "user_stopped", "user_id": user_id})
        await _reply(update, "Stopped: X-Ray sells what it holds for you on the next bars and enters "
                             "nothing. /resume trades again.")

    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if await self._user(update) is not None:
            await _reply(update, "I did not understand that. /help lists the commands.")

    async def _user(self, update: Update) -> str | None:
        """The chat's user, or None after the polite refusal."""
        chat = _chat_id(update)
        if chat is None:
            return None
        user_id = await asyncio.to_thread(self.links.user_of, chat)
        if user_id is None:
            await _reply(update, texts.NOT_LINKED)
            return None
        return user_id


def build_application(engine: Engine, settings: TelegramSettings, *, poll_timeout_s: float = 30.0,
                      confirm_s: float = 60.0,
                      limiter: PacedLimiter | None = None) -> Application:
    """The python-telegram-bot application with X-Ray's handlers, its base URL from `settings`
    (`limiter`: Telegram's limits unless given)."""
    if settings.bot_token is None or not settings.bot_token.get_secret_value().strip():
        raise ConfigError("no Telegram bot token is configured", "set XRAY_TELEGRAM_BOT_TOKEN")
    # httpx logs every request URL at INFO, and the bot token is part of the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    api = settings.api_url.rstrip("/")
    bot = XrayBot(engine, link_ttl_s=settings.link_code_ttl_s, confirm_s=confirm_s)
    app = (Application.builder().token(settings.bot_token.get_secret_value())
           .base_url(f"{api}/bot").base_file_url(f"{api}/file/bot")
           .rate_limiter(limiter or PacedLimiter(max_retries=settings.max_retries))
           .get_updates_read_timeout(poll_timeout_s + settings.timeout_s)
           .read_timeout(settings.timeout_s).build())
    for name, handler in bot.handlers():
        app.add_handler(CommandHandler(name, handler))
    app.add_handler(MessageHandler(filters.ALL, bot.unknown))
    app.bot_data["xray"] = bot
    return app


async def _set_commands(app: Application) -> None:
    await app.bot.set_my_commands([BotCommand(name, about) for name, about in texts.COMMANDS])


async def run_bot(engine: Engine, settings: TelegramSettings, stop: asyncio.Event, *,
                  poll_timeout_s: float = 30.0, confirm_s: float = 60.0,
                  limiter: PacedLimiter | None = None) -> None:
    """Serve the bot until `stop` is set."""
    app = build_application(engine, settings, poll_timeout_s=poll_timeout_s, confirm_s=confirm_s,
                            limiter=limiter)
    async with app:
        await app.start()
        await _set_commands(app)  # the command menu Telegram clients show
        assert app.updater is not None
        await app.updater.start_polling(timeout=int(poll_timeout_s), poll_interval=0.0)
        log.info("telegram bot polling", extra={"event": "telegram_bot_started"})
        try:
            await stop.wait()
        finally:
            await app.updater.stop()
            await app.stop()


def main() -> int:
    """`xray bot`: the bot on the runtime's database, settings from the environment, until a signal."""
    import signal
    import sys

    from xray_core.settings import load
    from xray_runtime import logs
    from xray_runtime.db import connect
    from xray_runtime.settings import RuntimeSettings

    async def serve(engine: Engine, settings: TelegramSettings) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_bot(engine, settings, stop)

    try:
        runtime = load(RuntimeSettings)
        logs.configure(runtime.log_format)
        telegram = load(TelegramSettings)
        if telegram.bot_token is None:
            raise ConfigError("no Telegram bot token is configured", "set XRAY_TELEGRAM_BOT_TOKEN")
        asyncio.run(serve(connect(runtime.database_url), telegram))
    except XrayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


def _chat_id(update: Update) -> int | None:
    return update.effective_chat.id if update.effective_chat is not None else None


async def _reply(update: Update, text: str) -> None:
    if update.effective_message is not None:
        await update.effective_message.reply_text(text, parse_mode=ParseMode.HTML)

