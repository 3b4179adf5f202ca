"""The emulated exchange's listed markets: symbols, precisions, fees and liquidity."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Defect(StrEnum):
    """Deliberate data problems a market can have, like the roadmap's TGTUSDT."""

    GAPS = "gaps"  # runs of missing bars
    ZERO_PRICES = "zero_prices"  # bars with a zero low/close
    DUPLICATE_BARS = "duplicate_bars"  # the same bar returned twice by klines
    HALTED = "halted"  # the listing stops: no bars and no trading after a point


@dataclass(frozen=True, slots=True)
class MarketSpec:
    base: str
    quote: str
    price: float  # price level the process mean-reverts to
    daily_vol: float  # daily log-return volatility in the normal regime
    beta: float  # loading on the market factor
    sector: str
    price_decimals: int
    amount_decimals: int
    quote_volume_per_minute: float  # typical traded quote volume per minute
    half_spread_bps: float = 2.0
    taker_fee: str = "0.0005"  # MEXC's spot taker commission, as MEXC writes it
    maker_fee: str = "0"
    min_quote: str = "1"  # MEXC's quoteAmountPrecision: the smallest order cost
    defects: frozenset[Defect] = frozenset()
    full_name: str = ""

    @property
    def symbol(self) -> str:
        """Unified symbol, as ccxt names it: BASE/QUOTE."""
        return f"{self.base}/{self.quote}"

    @property
    def market_id(self) -> str:
        """MEXC's id: BASEQUOTE."""
        return f"{self.base}{self.quote}"

    @property
    def tick(self) -> float:
        return 10.0**-self.price_decimals

    @property
    def lot(self) -> float:
        return 10.0**-self.amount_decimals


def _m(base: str, price: float, vol: float, beta: float, sector: str, pd: int, ad: int, qv: float,
       name: str, spread: float = 2.0, defects: frozenset[Defect] = frozenset()) -> MarketSpec:
    return MarketSpec(base, "USDT", price, vol, beta, sector, pd, ad, qv, spread, defects=defects,
                      full_name=name)


BROKEN_TGT = frozenset({Defect.GAPS, Defect.ZERO_PRICES, Defect.DUPLICATE_BARS})
BROKEN_SRM = frozenset({Defect.HALTED})

# 23 healthy USDT pairs and two broken ones. Numbers are plausible, not a claim about real markets.
DEFAULT_UNIVERSE: tuple[MarketSpec, ...] = (
    _m("BTC", 60000.0, 0.030, 1.00, "major", 2, 6, 900_000, "Bitcoin", 0.5),
    _m("ETH", 3000.0, 0.038, 1.10, "major", 2, 4, 500_000, "Ethereum", 0.8),
    _m("SOL", 150.0, 0.055, 1.30, "l1", 2, 2, 200_000, "Solana", 1.5),
    _m("XRP", 0.55, 0.045, 0.90, "payments", 4, 2, 150_000, "XRP", 1.5),
    _m("ADA", 0.45, 0.048, 1.00, "l1", 4, 2, 80_000, "Cardano"),
    _m("DOGE", 0.12, 0.060, 1.20, "meme", 5, 1, 120_000, "Dogecoin"),
    _m("TRX", 0.12, 0.030, 0.60, "payments", 5, 1, 50_000, "TRON"),
    _m("LTC", 80.0, 0.040, 0.90, "payments", 2, 3, 60_000, "Litecoin"),
    _m("DOT", 6.5, 0.050, 1.10, "l1", 3, 2, 40_000, "Polkadot"),
    _m("AVAX", 30.0, 0.058, 1.30, "l1", 2, 2, 60_000, "Avalanche"),
    _m("LINK", 14.0, 0.052, 1.10, "defi", 3, 2, 50_000, "Chainlink"),
    _m("BCH", 350.0, 0.045, 1.00, "payments", 2, 4, 40_000, "Bitcoin Cash"),
    _m("ATOM", 8.0, 0.050, 1.00, "l1", 3, 2, 30_000, "Cosmos"),
    _m("UNI", 7.0, 0.055, 1.10, "defi", 3, 2, 30_000, "Uniswap"),
    _m("XLM", 0.11, 0.042, 0.80, "payments", 5, 1, 25_000, "Stellar"),
    _m("NEAR", 5.0, 0.060, 1.30, "l1", 3, 2, 35_000, "NEAR Protocol"),
    _m("FIL", 5.5, 0.058, 1.20, "infra", 3, 2, 25_000, "Filecoin"),
    _m("APT", 9.0, 0.062, 1.30, "l1", 3, 2, 30_000, "Aptos"),
    _m("ARB", 1.1, 0.065, 1.30, "l2", 4, 2, 35_000, "Arbitrum"),
    _m("OP", 2.2, 0.065, 1.30, "l2", 4, 2, 30_000, "Optimism"),
    _m("INJ", 25.0, 0.070, 1.40, "defi", 3, 2, 25_000, "Injective"),
    _m("AAVE", 100.0, 0.055, 1.10, "defi", 2, 3, 25_000, "Aave"),
    _m("PEPE", 0.0000085, 0.090, 1.60, "meme", 10, 0, 60_000, "Pepe", 3.0),
    _m("TGT", 0.03, 0.080, 1.20, "smallcap", 5, 1, 8_000, "THORWallet", 8.0, BROKEN_TGT),
    _m("SRM", 0.05, 0.070, 1.20, "smallcap", 5, 1, 5_000, "Serum", 8.0, BROKEN_SRM),
)


# The long tail a real exchange also lists (hundreds of pairs on MEXC): extra healthy listings for load
# tests that need more symbols than the default universe (`EmulatorConfig.extra_listings`).
_LONG_TAIL_NAMES = (
    "SHIB", "ETC", "HBAR", "ICP", "VET", "MKR", "GRT", "ALGO", "SAND", "MANA", "AXS", "EGLD", "THETA", "FTM",
    "XTZ", "EOS", "FLOW", "CHZ", "KAVA", "ZEC", "DASH", "NEO", "IOTA", "QNT", "CRV", "SNX", "COMP", "ENJ",
    "BAT", "ZIL", "GMX", "LDO", "RNDR", "IMX", "STX", "SUI", "SEI", "TIA", "WLD", "JUP", "PYTH", "BONK",
    "WIF", "FET", "OCEAN", "RUNE", "KSM", "CAKE", "ROSE", "CELO", "ANKR", "SKL", "STORJ", "YFI", "SUSHI",
    "BAL", "LRC", "ENS", "DYDX", "BLUR", "MASK", "API3", "BAND", "COTI", "ONE", "KDA", "MINA", "GLMR",
    "ASTR", "ACH", "AUDIO", "BICO", "CELR", "CTSI", "DENT", "GALA", "HOT", "ICX", "JASMY", "LPT",
)


def long_tail(count: int) -> tuple[MarketSpec, ...]:
    """`count` extra healthy USDT listings with deterministic, plausible parameters."""
    if not 0 <= count <= len(_LONG_TAIL_NAMES):
        raise ValueError(f"extra listings must be 0..{len(_LONG_TAIL_NAMES)}")
    specs = []
    for i, base in enumerate(_LONG_TAIL_NAMES[:count]):
        price = 10.0 ** (((i * 37) % 9) - 4) * (1 + (i % 7) / 3)  # from 0.0001 to ~10,000
        magnitude = round(math.log10(price))
        price_decimals, amount_decimals = max(2, 4 - magnitude), min(6, max(0, magnitude + 1))
        specs.append(_m(base, price, 0.045 + (i % 5) * 0.008, 0.9 + (i % 6) * 0.1, "alt", price_decimals,
                        amount_decimals, 10_000 + 1_000 * (i % 9), base))
    return tuple(specs)
