"""Structured logs: one JSON object per line, with the `extra` fields a call passes, and a redaction
filter as a last line of defence so that a secret the service knows can never reach a log line."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, default=str)


class RedactSecrets(logging.Filter):
    """Replace every registered secret in a record's message and fields with `***`."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        self.secrets.update(v for v in values if v and len(v) >= 6)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg = self._clean(record.getMessage())
            record.args = None
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD and isinstance(value, str):
                    setattr(record, key, self._clean(value))
        return True


REDACT = RedactSecrets()

# Libraries that log requests: ccxt's DEBUG lines carry the API key header of every request. Their
# loggers are held at INFO and pass through the redaction filter (a logger's filters are not
# inherited by its children, so each one is named).
THIRD_PARTY = ("ccxt", "ccxt.base.exchange", "ccxt.async_support.base.exchange", "aiohttp.client",
               "aiohttp.access", "redis", "sqlalchemy.engine")


def guard_third_party() -> None:
    for name in THIRD_PARTY:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)
        if REDACT not in logger.filters:
            logger.addFilter(REDACT)


def configure(fmt: str = "json", level: int = logging.INFO, stream: TextIO = sys.stderr) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACT)
    root = logging.getLogger("xray_runtime")
    root.handlers = [handler]
    root.setLevel(level)
    root.propagate = False
