"""No secret reaches a log line, /health or an error message: not through a traceback (exc_info), not
in ccxt's error text (signed request URLs), not in a database URL that fails to parse."""

from __future__ import annotations

import io
import json
import logging

import ccxt
import pytest

from xray_core.errors import ConfigError
from xray_core.redaction import describe, scrub
from xray_runtime import db, logs

KEY = "mx0vSECRETKEY0001"
SECRET = "0123456789abcdefSECRET"
SIGNED = ("mexc POST http://127.0.0.1:8765/api/v3/order?symbol=BTCUSDT&side=BUY&type=MARKET&quantity=1"
          "&timestamp=1780000000000&recvWindow=5000&signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822c")


@pytest.fixture
def capture():
    """The runtime's configured logging into a string, with KEY and SECRET registered as secrets;
    both formats, restored afterwards."""
    root = logging.getLogger("xray_runtime")
    saved = root.handlers, root.level, root.propagate, set(logs.REDACT.secrets)
    streams: dict[str, io.StringIO] = {}

    def configure(fmt: str) -> io.StringIO:
        streams[fmt] = io.StringIO()
        logs.configure(fmt, stream=streams[fmt])
        logs.REDACT.add([KEY, SECRET])
        return streams[fmt]

    yield configure
    root.handlers, root.level, root.propagate = saved[:3]
    logs.REDACT.secrets = saved[3]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_traceback_is_redacted_like_the_message(capture, fmt):
    stream = capture(fmt)
    log = logging.getLogger("xray_runtime.test")
    try:
        raise ccxt.AuthenticationError(f"{SIGNED} key {KEY} secret={SECRET}")
    except ccxt.AuthenticationError:
        log.error("order failed", exc_info=True)
    try:
        raise ValueError(f"the key was {KEY}")
    except ValueError as exc:
        log.warning("with the exception object", exc_info=exc)
    text = stream.getvalue()
    assert "order failed" in text and "AuthenticationError" in text and "ValueError" in text
    for leaked in (KEY, SECRET, "signature=9f86", "timestamp=1780000000000"):
        assert leaked not in text, text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        error = lines[0]["error"]
        assert error.startswith("ccxt.base.errors.AuthenticationError") and "***" in error


def test_signed_urls_and_credentials_are_masked_even_when_nobody_registered_them(capture):
    stream = capture("json")
    logs.REDACT.secrets = set()  # e.g. before the first user was loaded
    log = logging.getLogger("xray_runtime.test")
    log.warning("exchange said %s", SIGNED, extra={"reason": SIGNED, "detail": {"url": SIGNED}})
    log.warning("database postgresql+psycopg://trader:hunter2@db:5432/xray is down")
    line = stream.getvalue()
    assert "signature=" not in line and "hunter2" not in line
    assert "http://127.0.0.1:8765/api/v3/order?***" in line and "trader:***@db" in line


def test_describe_keeps_the_error_and_drops_the_signed_url():
    text = describe(ccxt.ExchangeError(SIGNED + ' 400 {"code":700002,"msg":"Signature is not valid."}'))
    assert text.startswith("ExchangeError: mexc POST http://127.0.0.1:8765/api/v3/order?***")
    assert "700002" in text and "signature=" not in text and "\n" not in text


@pytest.mark.parametrize("url", ["postgres ql://trader:hunter2@db/xray", "mysql://trader:hunter2@db/xray",
                                 "trader:hunter2@db"])
def test_a_database_url_that_does_not_parse_is_named_without_its_password(url):
    with pytest.raises(ConfigError) as refused:
        db.connect(url)
    assert "hunter2" not in str(refused.value) and "XRAY_RUNTIME_DATABASE_URL" in str(refused.value)


def test_an_unreachable_database_is_one_line_without_the_password():
    with pytest.raises(ConfigError) as refused:
        db.connect("postgresql+psycopg://trader:hunter2@127.0.0.1:1/xray")
    assert "hunter2" not in str(refused.value) and "trader:***@127.0.0.1:1" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_scrub_leaves_ordinary_text_alone():
    for text in ("tick 3 users 10", "http://127.0.0.1:8765/api/v3/time", "sqlite:////tmp/runtime.db",
                 'mexc {"code":700002,"msg":"Signature for this request is not valid."}'):
        assert scrub(text) == text


async def test_a_step_failing_with_a_signed_url_keeps_it_out_of_health_and_the_log(capture):
    """The service kept `str(exc)` of ccxt errors, which begin with the signed request URL."""
    from types import SimpleNamespace

    from xray_runtime.service import TradingService
    from xray_runtime.settings import RuntimeSettings

    stream = capture("json")
    import sqlalchemy as sa

    parts = SimpleNamespace(settings=RuntimeSettings(database_url="sqlite://"), redis=None,
                            engine=sa.create_engine("sqlite://"))
    service = TradingService(parts)  # type: ignore[arg-type]

    async def failing_step() -> None:
        raise ccxt.ExchangeNotAvailable(SIGNED + " 503 Service Unavailable")

    service.step = failing_step  # type: ignore[method-assign]
    assert await service.safe_step() is None
    assert service.last_error is not None and "signature" not in service.last_error
    assert service.last_error.startswith("ExchangeNotAvailable: mexc POST http://127.0.0.1:8765/api/v3/order?***")
    assert "signature" not in stream.getvalue() and "step_failed" in stream.getvalue()
