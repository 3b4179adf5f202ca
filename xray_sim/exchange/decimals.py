"""Exact decimal handling for prices, amounts and balances, and MEXC's way of writing numbers.

Money is never accumulated in floats: bars are floats (numpy), but every price that reaches an order,
a fill or a balance is first converted to a Decimal on the market's tick grid.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

ZERO = Decimal(0)


def quantum(decimals: int) -> Decimal:
    """The smallest step with `decimals` decimal places: 2 -> Decimal('0.01')."""
    return Decimal(1).scaleb(-decimals)


def from_float(value: float, decimals: int) -> Decimal:
    """A float price or amount as the exact Decimal it stands for once rounded to `decimals` places."""
    return Decimal(f"{value:.{decimals}f}")


def floor_to(value: Decimal, decimals: int) -> Decimal:
    return value.quantize(quantum(decimals), rounding=ROUND_DOWN)


def places(value: Decimal) -> int:
    """Decimal places a value really uses: '1.50' uses 1, '100' uses 0."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


# The largest magnitude a request may carry (price, quantity, funds): far beyond any real order or
# balance, far below where Decimal arithmetic overflows (9E999999 * a price raises decimal.Overflow).
MAX_MAGNITUDE = Decimal("1e18")
MAX_TEXT = 64  # characters of a number in a request


def parse_decimal(text: str) -> Decimal | None:
    """A finite Decimal from request text, or None when the text is not a plain number or is out of
    any sensible range (more than MAX_TEXT characters, a magnitude of MAX_MAGNITUDE or more)."""
    if len(text) > MAX_TEXT:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and abs(value) < MAX_MAGNITUDE else None


def fmt_decimal(value: Decimal) -> str:
    """MEXC writes numbers as plain strings without exponent or trailing zeros: '0.0005', '10'."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def fmt_float(value: float, decimals: int) -> str:
    """A float rounded to `decimals` places, written like `fmt_decimal` (no float noise like 0.1000000002)."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
