"""Notifications of the trading runtime through the Telegram Bot API.

`Notifier` is what the trading service uses (queued, paced, never raising into the trading loop);
`TelegramClient` is the Bot API client underneath; `fake_bot` is a loopback fake of the Bot API for
tests and the demo, imported from its module so production code never loads it.
"""

from xray_runtime.notify.notifier import Notifier, NotifierStats, NotifyUser, Pacer
from xray_runtime.notify.telegram import TelegramClient, TelegramError

__all__ = ["Notifier", "NotifierStats", "NotifyUser", "Pacer", "TelegramClient", "TelegramError"]
