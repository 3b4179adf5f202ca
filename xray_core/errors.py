"""Errors a user can act on.

Every error a person can fix (a wrong symbol, a malformed setting, an unreachable exchange) is an
`XrayError` carrying one line saying what is wrong and what to do. The CLI prints that line and exits
non-zero without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class XrayError(Exception):
    """A problem the user can fix. `str(err)` is one line: the problem, then what to do."""

    exit_code = 2

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} — {hint}" if hint else problem)


class ConfigError(XrayError):
    """A setting (environment variable or option) is malformed or inconsistent."""


class UnknownSymbolError(XrayError):
    """The exchange does not list the symbol."""


class UnknownTimeframeError(XrayError):
    """The timeframe is not one the exchange or X-Ray supports."""


class ExchangeUnavailableError(XrayError):
    """The exchange could not be reached after retries."""

    exit_code = 3


class ExchangeAuthError(XrayError):
    """The exchange rejected the API key or signature."""


class DataError(XrayError):
    """Stored or supplied market data is corrupt or has the wrong schema."""
