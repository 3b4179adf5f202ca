"""News sentiment for the models that were trained with it.

A model's features include the news sentiment of its symbol and of the market (`FEATURES`: sent_*,
mkt_sent_*). A model trained on real sentiment and fed none would see "no news" on every bar, a
skew between training and trading. The pipelines keep the sentiment in the lake (`news_sentiment`,
one row per symbol and ended hour, never rewritten: `xray_core.analysis.news_items`), so the runtime
reads that table, read-only, from the DuckDB file the pipelines write (XRAY_HOME / XRAY_DUCKDB_PATH,
the same settings). It is read only while the bundle trades such a model (the bundle marks it:
`models.<kind>.sentiment`), at most once per `refresh_s`, off the event loop; a failed read keeps the
last frame (and is logged), never stops trading.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from xray_core.research.store import LakeTable, ResearchStore

if TYPE_CHECKING:
    from xray_runtime.artefacts import Promoted

log = logging.getLogger(__name__)


class SentimentFeed:
    def __init__(self, duckdb_file: Path, exchange: str, refresh_s: float = 300.0) -> None:
        self.duckdb_file = Path(duckdb_file)
        self.exchange = exchange
        self.refresh_s = refresh_s
        self._frame: pl.DataFrame | None = None
        self._read_at: float | None = None

    @classmethod
    def from_settings(cls, exchange: str) -> SentimentFeed:
        from xray_core.settings import StoreSettings, load

        return cls(load(StoreSettings).duckdb_file, exchange)

    async def current(self) -> pl.DataFrame | None:
        """The sentiment rows (symbol, hour, ...), re-read when `refresh_s` has passed; None before
        the pipelines wrote any."""
        if self._read_at is None or time.monotonic() - self._read_at >= self.refresh_s:
            self._read_at = time.monotonic()
            try:
                frame = await asyncio.to_thread(self._read)
            except Exception as exc:  # a locked or broken lake file: trade on the last frame read
                log.warning("sentiment unavailable", extra={"event": "sentiment_unavailable",
                                                            "reason": f"{type(exc).__name__}: {exc}"[:300]})
            else:
                self._frame = frame if frame is not None and frame.height else self._frame
        return self._frame

    def _read(self) -> pl.DataFrame | None:
        if not self.duckdb_file.exists():
            return None
        store = ResearchStore(self.duckdb_file, self.duckdb_file.parent / "lake", lock_timeout_s=2.0)
        return store.read(LakeTable.NEWS_SENTIMENT, {"exchange": self.exchange})


def wants_sentiment(models: dict[str, dict[str, object]], kinds: set[str]) -> bool:
    """Whether any of the champions `kinds` a bundle trades was trained with news sentiment."""
    return any(bool(models.get(kind, {}).get("sentiment")) for kind in kinds)


async def news_for(feed: SentimentFeed | None, promoted: Promoted, model_kind: str) -> pl.DataFrame | None:
    """The sentiment rows when a champion the bundle trades was trained with news (else None: the lake
    is not read for rule strategies, nor for models that never saw news). `model_kind`: the runtime's
    kind, for `model` symbols of older bundles that name none."""
    plans = promoted.plans.values()
    kinds = {plan.model_kind or model_kind for plan in plans if plan.strategy.name == "model"}
    if feed is None or not wants_sentiment(promoted.models, kinds):
        return None
    return await feed.current()
