"""Running the service: settings from the environment, signals for a clean stop, one-line errors."""

from __future__ import annotations

import asyncio
import signal
import sys

from xray_core.errors import ConfigError, XrayError
from xray_core.settings import ExchangeSettings, load
from xray_runtime import logs
from xray_runtime.components import Components
from xray_runtime.service import TradingService
from xray_runtime.settings import RuntimeSettings, TelegramSettings


def build_service(model_kind: str = "gbm", **overrides: object) -> TradingService:
    """The service from the environment (`XRAY_RUNTIME_*`, `XRAY_TELEGRAM_*`, `XRAY_EXCHANGE_*`)."""
    settings = load(RuntimeSettings, **overrides)
    parts = Components.build(settings, load(TelegramSettings), load(ExchangeSettings), model_kind=model_kind)
    service = TradingService(parts, model_kind=model_kind)
    parts.health = service.health
    return service


async def serve_forever(service: TradingService) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await service.run(stop)


MODEL_KINDS = ("gbm", "lstm", "rl")  # the champions a bundle names (xray_pipelines' registry KINDS)


def main(model_kind: str = "gbm") -> int:
    try:
        if model_kind not in MODEL_KINDS:
            raise ConfigError(f"unknown model kind {model_kind!r}", f"use one of: {', '.join(MODEL_KINDS)}")
        settings = load(RuntimeSettings)
        logs.configure(settings.log_format)
        service = build_service(model_kind)
        asyncio.run(serve_forever(service))
    except XrayError as exc:
        print(f"xray: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return 0
