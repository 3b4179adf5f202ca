"""Notifications of the trading runtime through the Telegram Bot API.

`Notifier` is what the trading service uses (queued, paced, never raising into the trading loop);
`TelegramClient` is the Bot API client underneath. The loopback fake of the Bot API that tests talk
to is equipment, not product: it lives in `xray_sim.telegram`, which the runtime never imports.
"""

from xray_runtime.notify.notifier import Notifier, NotifierStats, NotifyUser, Pacer
from xray_runtime.notify.telegram import TelegramClient, TelegramError

__all__ = ["Notifier", "NotifierStats", "NotifyUser", "Pacer", "TelegramClient", "TelegramError"]
