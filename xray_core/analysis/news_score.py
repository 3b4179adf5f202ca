"""Headline tone: VADER's compound score with a small crypto lexicon on top.

Why VADER: it is a transparent lexicon-and-rules model (negation, "very", all-caps, "!") that needs
no training data and no GPU, scores a headline in microseconds, and gives the same answer every
run. Its general-English lexicon misses the words crypto news turns on, so plain VADER scores
"Bitcoin surges to record high as ETF inflows soar" as 0.0; `CRYPTO_LEXICON` adds those words
(valences on VADER's −4…+4 scale) and `CRYPTO_PHRASES` rewrites multi-word terms ("rug pull",
"all-time high", "ETF approval") into single tokens the lexicon knows, because VADER looks words up
one at a time.

A headline's score: compound(title), or, with a summary, the weighted mean
`(compound(title) + w·compound(summary)) / (1 + w)` with `w = summary_weight` (0.5 by default):
titles are written to carry the story's gist, summaries are longer and often boilerplate, so they
inform without dominating. `positive`/`negative` are VADER's pos/neg proportions weighted the same
way. Tickers and coin names are masked before scoring (see `SymbolMapper.mask`) so that a coin named
"Optimism" or "WIN" does not read as good news.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from xray_core.analysis.news_symbols import SymbolMapper
from xray_core.errors import ConfigError

POSITIVE_THRESHOLD = 0.05  # VADER's own convention: compound >= 0.05 is positive, <= -0.05 negative

CRYPTO_LEXICON: Mapping[str, float] = {
    # market moves, up
    "bullish": 2.4, "bull": 1.2, "rally": 2.0, "rallies": 2.0, "rallied": 2.0, "surge": 2.2, "surges": 2.2,
    "surged": 2.2, "soar": 2.4, "soars": 2.4, "soared": 2.4, "soaring": 2.4, "jumps": 1.6, "jumped": 1.6,
    "climbs": 1.4, "climbed": 1.4, "rebound": 1.4, "rebounds": 1.4, "recovers": 1.4, "breakout": 1.8,
    "skyrockets": 2.6, "moon": 1.5, "mooning": 2.0, "ath": 2.5, "inflows": 1.4, "outperforms": 1.6,
    "shortsqueeze": 1.5, "etfapproval": 2.8, "upgrade": 1.2, "upgrades": 1.2, "adoption": 1.5,
    "partnership": 1.3, "partners": 0.8, "approves": 2.0, "listing": 0.9, "lists": 0.6, "accumulate": 1.0,
    "accumulation": 1.0, "milestone": 1.5, "record": 1.2,
    # market moves, down
    "bearish": -2.4, "bear": -1.2, "plunge": -2.4, "plunges": -2.4, "plunged": -2.4, "plummets": -2.6,
    "plummeted": -2.6, "tumbles": -2.0, "tumbled": -2.0, "slump": -2.0, "slumps": -2.0, "slides": -1.4,
    "sinks": -1.8, "sank": -1.8, "drops": -1.3, "dropped": -1.3, "falls": -1.3, "fell": -1.3,
    "selloff": -2.0, "sell-off": -2.0, "capitulation": -2.2, "atl": -2.2, "outflows": -1.4,
    "liquidated": -2.2, "liquidation": -1.8, "liquidations": -1.8, "crashes": -2.4, "crashed": -2.4,
    "dumps": -1.7, "dumped": -1.7, "underperforms": -1.4, "correction": -0.8, "etfrejection": -2.6,
    # incidents and enforcement
    "hack": -2.8, "hacks": -2.8, "hacker": -2.2, "hackers": -2.2, "exploit": -2.6, "exploits": -2.6,
    "exploited": -2.6, "drained": -2.6, "rugpull": -3.2, "exitscam": -3.4, "bankrun": -2.6,
    "delist": -2.4, "delists": -2.4, "delisted": -2.4, "delisting": -2.4, "insolvent": -3.0,
    "insolvency": -3.0, "bankruptcy": -3.0, "halts": -1.8, "halted": -1.8, "outage": -1.8, "depeg": -2.6,
    "depegs": -2.6, "depegged": -2.6, "sued": -1.8, "sues": -1.8, "lawsuit": -1.6, "probe": -1.2,
    "subpoena": -1.6, "crackdown": -2.0, "fined": -1.8, "fines": -1.5, "bans": -2.2, "indicted": -2.4,
    "ponzi": -3.0, "phishing": -2.2, "vulnerability": -1.8, "breach": -2.2, "stolen": -2.6,
}
# Multi-word terms, matched case-insensitively as whole words, rewritten to one lexicon token.
CRYPTO_PHRASES: Mapping[str, str] = {
    "rug pull": "rugpull", "rug pulls": "rugpull", "rug-pull": "rugpull", "rugged": "rugpull",
    "exit scam": "exitscam", "bank run": "bankrun", "short squeeze": "shortsqueeze",
    "all-time high": "ath", "all time high": "ath", "all-time highs": "ath", "record high": "ath",
    "all-time low": "atl", "all time low": "atl", "record low": "atl",
    "etf approval": "etfapproval", "etf approved": "etfapproval", "approves spot etf": "etfapproval",
    "etf rejection": "etfrejection", "etf rejected": "etfrejection", "rejects spot etf": "etfrejection",
    "sell off": "selloff", "loses peg": "depeg", "lost its peg": "depeg",
}


@dataclass(frozen=True, slots=True)
class Sentiment:
    """A headline's tone: compound in [−1, 1] and VADER's positive/negative proportions in [0, 1]."""

    compound: float
    positive: float
    negative: float

    @property
    def label(self) -> int:
        """+1, 0 or −1 by VADER's ±0.05 convention."""
        if self.compound >= POSITIVE_THRESHOLD:
            return 1
        return -1 if self.compound <= -POSITIVE_THRESHOLD else 0


def _phrase_regex(phrases: Mapping[str, str]) -> re.Pattern[str] | None:
    if not phrases:
        return None
    keys = sorted(phrases, key=lambda p: (-len(p), p))
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(k) for k in keys) + r")(?!\w)", re.IGNORECASE)


class HeadlineScorer:
    """VADER plus crypto vocabulary. One analyzer per scorer: VADER's lexicon is a plain dict, so
    extending it here never leaks into another scorer. Scoring only reads it, so a built scorer is
    safe to share between threads."""

    def __init__(self, *, summary_weight: float = 0.5, crypto_lexicon: bool = True,
                 extra_lexicon: Mapping[str, float] | None = None,
                 mapper: SymbolMapper | None = None) -> None:
        if not 0 <= summary_weight <= 10:
            raise ConfigError(f"summary weight {summary_weight} is out of range", "use a value in [0, 10]")
        self.summary_weight = summary_weight
        self.mapper = mapper
        self._vader = SentimentIntensityAnalyzer()
        phrases: dict[str, str] = {}
        if crypto_lexicon:
            self._vader.lexicon.update(CRYPTO_LEXICON)
            phrases.update({k.casefold(): v for k, v in CRYPTO_PHRASES.items()})
        for word, valence in (extra_lexicon or {}).items():
            if not -4 <= valence <= 4:
                raise ConfigError(f"lexicon valence {valence} for {word!r} is outside VADER's [-4, 4]")
            token = word.strip().casefold()
            if " " in token:  # a phrase: rewrite it to a single token the lexicon knows
                joined = re.sub(r"\W+", "", token)
                phrases[token] = joined
                token = joined
            self._vader.lexicon[token] = float(valence)
        self._phrases = phrases
        self._phrase_re = _phrase_regex(phrases)

    def prepare(self, text: str) -> str:
        """The text VADER sees: coin names and tickers masked, crypto phrases joined into tokens."""
        if self.mapper is not None:
            text = self.mapper.mask(text)
        if self._phrase_re is not None:
            text = self._phrase_re.sub(lambda m: self._phrases[m.group(1).casefold()], text)
        return text

    def _vader_scores(self, text: str) -> tuple[float, float, float]:
        scores = self._vader.polarity_scores(self.prepare(text))
        return scores["compound"], scores["pos"], scores["neg"]

    def score(self, title: str, summary: str = "") -> Sentiment:
        """compound(title), blended with compound(summary) at `summary_weight` when there is one."""
        title_scores = self._vader_scores(title)
        if not summary.strip() or self.summary_weight == 0:
            return Sentiment(*title_scores)
        summary_scores = self._vader_scores(summary)
        w = self.summary_weight
        blended = [(t + w * s) / (1 + w) for t, s in zip(title_scores, summary_scores, strict=True)]
        return Sentiment(*blended)
