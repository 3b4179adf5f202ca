"""Which assets a headline is about.

Matching rules (a headline may name several assets; each is reported once):

1. Cashtags and hashtags, any case: `$BTC`, `$btc`, `#ETH` name the asset whose base ticker follows.
2. Bare tickers only as exact upper-case whole tokens: `BTC`, `BTC's`, `BTC-USD`, `BTC/USDT`,
   but not `btc`, `WBTC`, `S&P`, `U.S.`. Upper case is required because most tickers are also
   words ("LINK", "DOT", "NEAR", "ONE", "SOL").
3. Tickers that are English words or common abbreviations (`COMMON_WORD_TICKERS`: ONE, UNI, OP,
   LINK, DOT, …) also match bare, but not in an all-caps headline ("ONE MORE RATE HIKE"), where
   every word is upper case; there only their cashtag counts. Tickers that collide with everyday
   upper-case abbreviations (`CASHTAG_ONLY`: AI, US, IT, ETF, SEC, …) and single-letter tickers
   match only as cashtags.
4. Full names, case-insensitive whole words: "bitcoin", "Ethereum's", "#Solana". A name that is an
   English word (`COMMON_WORD_NAMES`: Optimism, Stellar, Harmony, Cosmos, …) matches only with the
   capitalisation given in `names`.
5. Market-wide headlines (`MARKET_TERMS`: "crypto market", "altcoins", "Federal Reserve",
   "interest rates", and the case-sensitive "Fed", "SEC", "FOMC", "CPI", …) map to the pseudo-symbol
   `"*"`, in addition to any asset they name. "*" carries market mood: a rate decision moves every
   coin, but spreading it onto every symbol would drown symbol-specific news.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from xray_core.errors import ConfigError

MARKET = "*"

COMMON_WORD_TICKERS = frozenset({
    "ONE", "UNI", "OP", "LINK", "DOT", "NEAR", "ATOM", "SAND", "GAS", "MASK", "SUN", "CAKE", "APE",
    "BOND", "HOT", "WIN", "FUN", "JOY", "KEY", "SAFE", "SUPER", "MAGIC", "REAL", "TRUE", "ACE", "ARK",
    "BAND", "BLUR", "CORE", "FLOW", "FORTH", "HIGH", "HOOK", "LIT", "LOOM", "MEME", "POND", "RARE",
    "WOO", "ZEN", "DOG", "CAT", "PEOPLE", "EDU", "BAT", "ANT", "LAND", "GOLD", "STORJ", "BOME", "PEPE",
    "RUNE", "ICE", "MOON", "DASH", "WAVES", "COMP", "MAV", "GRT", "ORDI", "TRUMP", "CHEEMS", "DEGEN",
})
CASHTAG_ONLY = frozenset({
    "AI", "US", "IT", "ME", "IN", "ON", "OR", "AT", "GO", "ID", "IP", "OK", "TV", "UK", "EU", "UN", "OM",
    "OG", "CEO", "ETF", "SEC", "FED", "CPI", "GDP", "NFT", "DEFI", "DAO", "API", "IPO", "ATH", "ATL",
    "USA", "ACT", "ALT", "NEW", "NOW", "TOP", "BIG", "ALL", "ANY", "FOR", "THE", "AND", "BUY", "SELL",
})
COMMON_WORD_NAMES = frozenset({
    "optimism", "stellar", "harmony", "cosmos", "polygon", "near", "flow", "maker", "compound",
    "the graph", "graph", "helium", "waves", "dash", "sandbox", "the sandbox", "celestia", "injective",
    "render", "arbitrum", "sui", "aptos", "theta", "zcash", "monero", "chainlink", "uniswap", "tron",
    "ripple", "pepe", "bonk", "sei", "core", "gala", "magic", "immutable", "ocean", "oasis", "mask",
})
# Case-insensitive phrases, then case-sensitive acronyms ("Fed" not "fed", "SEC" not "sec").
MARKET_TERMS = (
    "crypto market", "crypto markets", "cryptocurrency market", "cryptocurrency markets",
    "crypto prices", "crypto industry", "crypto sector", "crypto regulation", "crypto regulations",
    "digital asset market", "digital asset markets", "altcoins", "altcoin season", "altcoin market",
    "total market cap", "crypto market cap", "stablecoins", "Federal Reserve", "interest rate",
    "interest rates", "rate cut", "rate cuts", "rate hike", "rate hikes", "inflation", "risk assets",
    "crypto regulators", "crypto crackdown",
)
MARKET_ACRONYMS = ("Fed", "FOMC", "SEC", "CPI", "CFTC", "Treasury", "Powell")

DEFAULT_NAMES: Mapping[str, str] = {
    "BTC": "Bitcoin", "ETH": "Ethereum", "SOL": "Solana", "XRP": "Ripple", "BNB": "BNB Chain",
    "ADA": "Cardano", "DOGE": "Dogecoin", "TRX": "Tron", "DOT": "Polkadot", "AVAX": "Avalanche",
    "LINK": "Chainlink", "LTC": "Litecoin", "MATIC": "Polygon", "POL": "Polygon", "UNI": "Uniswap",
    "ATOM": "Cosmos", "XLM": "Stellar", "NEAR": "NEAR Protocol", "OP": "Optimism", "ARB": "Arbitrum",
    "APT": "Aptos", "SUI": "Sui", "TON": "Toncoin", "SHIB": "Shiba Inu", "PEPE": "Pepe",
    "FIL": "Filecoin", "AAVE": "Aave", "ETC": "Ethereum Classic", "BCH": "Bitcoin Cash", "XMR": "Monero",
}

# A bare ticker is a whole token: not glued to letters, digits, "_", "&", a leading "." or "-"
# ("U.S.", "S&P", "X-BTC"), nor followed by ".x" ("BTC.D"); "BTC's", "BTC-USD" and "BTC/USDT" match.
_BARE_LEFT = r"(?<![\w&.\-$#@])"
_BARE_RIGHT = r"(?![\w&]|\.\w)"
_CASHTAG = re.compile(r"(?<![\w$#])[$#]([A-Za-z][A-Za-z0-9]{0,19})(?!\w)")


def base_of(symbol: str) -> str:
    """"BTC/USDT" and "BTC/USDT:USDT" → "BTC"; a bare "BTC" is its own base."""
    base = symbol.split("/", 1)[0].strip().upper()
    if not base or not base.replace(".", "").isalnum():
        raise ConfigError(f"news universe symbol {symbol!r} has no base asset", "give e.g. 'BTC/USDT'")
    return base


def _alternation(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def _bare_regex(bases: set[str]) -> re.Pattern[str] | None:
    return re.compile(f"{_BARE_LEFT}({_alternation(bases)}){_BARE_RIGHT}") if bases else None


def _word_regex(words: Iterable[str], flags: int) -> re.Pattern[str] | None:
    kept = [w.strip() for w in words if w.strip()]
    return re.compile(rf"(?<!\w)({_alternation(kept)})(?!\w)", flags) if kept else None


@dataclass(frozen=True, slots=True)
class Mention:
    """One span of text that names an asset (or the market)."""

    asset: str
    start: int
    end: int


class SymbolMapper:
    """Maps headline text to base assets of a universe (and to `MARKET` for market-wide news).

    `universe` lists symbols ("BTC/USDT"); `names` maps base tickers to a full name or several
    ("BTC": ("Bitcoin", "BTC network")); bases without one take `DEFAULT_NAMES` unless
    `use_default_names` is off. Built once (it compiles its patterns), then read-only and
    thread-safe. See the module docstring for the rules."""

    __slots__ = ("_bare", "_bare_common", "_loose", "_loose_names", "_market", "_market_acr", "_strict",
                 "_strict_names", "_symbols")

    def __init__(self, universe: Sequence[str], names: Mapping[str, str | Sequence[str]] | None = None, *,
                 market_terms: Sequence[str] = MARKET_TERMS, market_acronyms: Sequence[str] = MARKET_ACRONYMS,
                 use_default_names: bool = True) -> None:
        if not universe:
            raise ConfigError("the news universe is empty", "give at least one symbol such as 'BTC/USDT'")
        symbols_by_base: dict[str, list[str]] = {}
        for symbol in universe:
            symbols_by_base.setdefault(base_of(symbol), []).append(symbol)
        self._symbols = {b: tuple(dict.fromkeys(s)) for b, s in symbols_by_base.items()}
        bases = set(self._symbols)
        bare = {b for b in bases if len(b) > 1 and b not in CASHTAG_ONLY}
        self._bare = _bare_regex(bare - COMMON_WORD_TICKERS)
        self._bare_common = _bare_regex(bare & COMMON_WORD_TICKERS)
        self._loose_names: dict[str, str] = {}  # casefolded name -> base
        self._strict_names: dict[str, str] = {}  # name as written -> base
        names = dict(names or {})
        for base in sorted(bases):
            given = names.get(base, names.get(base.lower()))
            if given is None and use_default_names:
                given = DEFAULT_NAMES.get(base)
            for name in [given] if isinstance(given, str) else list(given or ()):
                name = name.strip()
                if name.casefold() in COMMON_WORD_NAMES:
                    self._strict_names[name] = base
                elif name:
                    self._loose_names[name.casefold()] = base
        self._loose = _word_regex(self._loose_names, re.IGNORECASE)
        self._strict = _word_regex(self._strict_names, 0)
        self._market = _word_regex(market_terms, re.IGNORECASE)
        self._market_acr = _word_regex(market_acronyms, 0)

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(sorted(self._symbols))

    def symbols_of(self, asset: str) -> tuple[str, ...]:
        """Universe symbols of a base asset ("BTC" → ("BTC/USDT",)); `MARKET` stays itself."""
        return (MARKET,) if asset == MARKET else self._symbols.get(asset, ())

    def mentions(self, text: str) -> list[Mention]:
        """Every span that names an asset or the market, in text order."""
        found: list[Mention] = []
        for match in _CASHTAG.finditer(text):
            base = match.group(1).upper()
            if base in self._symbols:
                found.append(Mention(base, match.start(), match.end()))
        shouting = not any(c.islower() for c in text)
        patterns = [self._bare] if shouting else [self._bare, self._bare_common]
        for pattern in patterns:
            if pattern is not None:
                found.extend(Mention(m.group(1), m.start(), m.end()) for m in pattern.finditer(text))
        if self._loose is not None:
            found.extend(Mention(self._loose_names[m.group(1).casefold()], m.start(), m.end())
                         for m in self._loose.finditer(text))
        if self._strict is not None:
            found.extend(Mention(self._strict_names[m.group(1)], m.start(), m.end())
                         for m in self._strict.finditer(text))
        for pattern in (self._market, self._market_acr):
            if pattern is not None:
                found.extend(Mention(MARKET, m.start(), m.end()) for m in pattern.finditer(text))
        return sorted(found, key=lambda m: (m.start, -m.end))

    def assets(self, text: str) -> tuple[str, ...]:
        """Base assets (and `MARKET`) the text is about, sorted, each once."""
        return tuple(sorted({m.asset for m in self.mentions(text)}))

    def symbols(self, text: str) -> tuple[str, ...]:
        """Universe symbols (and `MARKET`) the text is about, sorted, each once."""
        return tuple(sorted({s for a in self.assets(text) for s in self.symbols_of(a)}))

    def mask(self, text: str) -> str:
        """The text with asset names and tickers removed, so that a coin called "Optimism", "WIN" or
        "SAFE" does not read as sentiment. Market terms stay: "inflation" is part of the tone."""
        spans = [m for m in self.mentions(text) if m.asset != MARKET]
        out: list[str] = []
        position = 0
        for mention in spans:
            if mention.start < position:
                continue  # overlapping spans ("$BTC" and "BTC"): the first one covers both
            out.append(text[position:mention.start])
            position = mention.end
        out.append(text[position:])
        return "".join(out)
