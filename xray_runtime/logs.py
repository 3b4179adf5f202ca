"""Structured logs: one JSON object per line, with the `extra` fields a call passes, and a redaction
filter as a last line of defence so that a secret the service knows can never reach a log line.

The filter cleans everything a handler may print: the message, the `extra` fields, and the
traceback of `exc_info` (formatted and cleaned once, then kept as `exc_text`: a formatter prints
`exc_text` and never re-formats the exception). Besides the secrets it was told about (users' keys),
it masks what looks like a credential (`xray_core.redaction.scrub`): URL passwords, the query
strings of signed request URLs that ccxt writes into its errors, `signature=`/`apiKey=` values."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import TextIO

from xray_core.redaction import scrub

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
        if record.exc_info and not record.exc_text:  # not through the redaction filter
            record.exc_text = scrub(self.formatException(record.exc_info))
        if record.exc_text:
            line["error"] = record.exc_text.splitlines()[-1]
        return json.dumps(line, default=str)


class RedactSecrets(logging.Filter):
    """Replace every registered secret, and whatever looks like a credential, in a record's message,
    fields and traceback with `***`."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        self.secrets.update(v for v in values if v and len(v) >= 6)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return scrub(text)

    def _clean_value(self, value: object) -> object:
        """Strings cleaned, also inside the dicts, lists and tuples an `extra` field may hold."""
        if isinstance(value, str):
            return self._clean(value)
        if isinstance(value, dict):
            return {k: self._clean_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._clean_value(v) for v in value]
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format: keep the template
            message = str(record.msg)
        record.msg, record.args = self._clean(message), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                setattr(record, key, self._clean_value(value))
        if record.exc_info:
            # Formatted here, cleaned, and kept as exc_text, which formatters print instead of
            # formatting the exception again (whose message may carry a key or a signed URL).
            text = record.exc_text or _PLAIN.formatException(record.exc_info)
            record.exc_text, record.exc_info = self._clean(text), None
        elif record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        return True


_PLAIN = logging.Formatter()


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
