"""Shadow trading: every model the bundle names keeps a paper book on the bars the runtime trades.

On each tick, after the real orders are out, every shadow model (`Promoted.shadow`: the challengers,
and the champions they are paired with) is evaluated with the `model` strategy on the same closed bars
the champion saw, for every symbol of the bundle (the symbol's own `model` parameters where it is
planned on the model, else the strategy's defaults, which are the thresholds the models are evaluated
with). The book holds the model's target over the next bar; each closed bar is one row of the journal's
`shadow_bars`: the position taken at its close and the book's return over it,

    ret[t] = position[t-1] * (close[t] / close[t-1] - 1) - (fee + slippage) * |position[t] - position[t-1]|

at the research costs the bundle carries (the gate's costs). A book opens flat on the first bar the
runtime sees the model: the record is live, never a replay of history.

Nothing here can place an order: this module has no executor, account or exchange, only the bars the
tick already fetched and the database. The record survives restarts (it is SQL): a restarted runtime
continues each book from its last recorded bar, filling the bars it missed from the candle window (the
positions are a function of the bars alone, as in `signals`). A failure — a model that raises, the
database away — is logged and retried on the next tick, never a reason to skip a real decision.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from xray_core.settings import ResearchSettings, load
from xray_core.strategies import MarketContext, Mode, ModelStrategy
from xray_core.strategies.model import candles_of
from xray_core.trading.journal_schema import shadow_table
from xray_runtime.artefacts import Promoted, ShadowModel
from xray_runtime.db import METADATA
from xray_runtime.market import SymbolBars

log = logging.getLogger(__name__)
shadow_bars_table = shadow_table(METADATA)
Key = tuple[str, int, str]  # model name, version, symbol
_CHUNK = 500


@dataclass
class ShadowReport:
    rows: int = 0  # bars recorded this tick, over all books
    failures: dict[str, str] = field(default_factory=dict)  # "name/version symbol" -> why


class ShadowBooks:
    """The shadow paper books of one runtime process, recorded in `shadow_bars` through `engine`."""

    def __init__(self, engine: Engine, benchmark: str = "BTC/USDT") -> None:
        self.engine = engine
        self.benchmark = benchmark
        self._insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self.last: dict[Key, tuple[int, float]] = {}  # the last recorded (bar_ms, position) per book
        self.last_error: str | None = None

    def record(self, promoted: Promoted, data: dict[str, SymbolBars]) -> ShadowReport:
        """Evaluate every shadow model on the fresh symbols of `data` and record the bars not yet
        recorded. Never raises for a model or the database: the report and `last_error` say why."""
        report = ShadowReport()
        if not promoted.shadow:
            return report
        try:
            self._load_last([(m.name, m.version, symbol) for m in promoted.shadow.values()
                             for symbol in promoted.plans])
        except SQLAlchemyError as exc:
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.error("shadow record failed", extra={"event": "shadow_failed", "reason": self.last_error})
            return report
        fee, slippage = promoted.costs or _research_costs()
        rows: list[dict[str, Any]] = []
        now_ms = int(time.time() * 1000)
        benchmark = data.get(self.benchmark)
        for model in promoted.shadow.values():
            for symbol, plan in promoted.plans.items():
                bars = data.get(symbol)
                if bars is None or not bars.fresh or len(bars.bars) < 2:
                    continue
                params = plan.params if plan.strategy.name == "model" else ModelStrategy().params({})
                try:
                    positions = self._positions(model, symbol, bars, benchmark, params)
                except Exception as exc:  # a model that fails is this book's problem alone
                    report.failures[f"{model.name}/{model.version} {symbol}"] = f"{type(exc).__name__}: {exc}"
                    continue
                rows.extend(self._new_rows(model, symbol, bars, positions, fee + slippage, promoted.version,
                                           now_ms))
        if report.failures:
            log.warning("shadow models failed", extra={"event": "shadow_model_failed",
                                                       "failures": report.failures})
        try:
            self._write(rows)
        except SQLAlchemyError as exc:
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.error("shadow record failed", extra={"event": "shadow_failed", "reason": self.last_error})
            return report
        for row in rows:
            key = (row["model"], row["version"], row["symbol"])
            if row["bar_ms"] > self.last.get(key, (-1, 0.0))[0]:
                self.last[key] = (row["bar_ms"], row["position"])
        self.last_error = None
        report.rows = len(rows)
        return report

    def rows(self, model: str | None = None) -> list[dict[str, Any]]:
        """The recorded rows (of one model name, or all), in (model, version, symbol, bar) order."""
        c = shadow_bars_table.c
        query = sa.select(shadow_bars_table).order_by(c.model, c.version, c.symbol, c.bar_ms)
        if model is not None:
            query = query.where(c.model == model)
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    # ---- pieces ----------------------------------------------------------------------------------

    def _positions(self, model: ShadowModel, symbol: str, bars: SymbolBars, benchmark: SymbolBars | None,
                   params: Any) -> np.ndarray:
        context = MarketContext(
            symbol, candles_of(benchmark.bars) if benchmark is not None and symbol != self.benchmark else None
        )
        strategy = ModelStrategy().bind(model.predictor, context)
        return (np.asarray(strategy.positions(bars.bars, params, Mode.LONG_ONLY)) > 0).astype(np.float64)

    def _new_rows(self, model: ShadowModel, symbol: str, bars: SymbolBars, positions: np.ndarray,
                  cost: float, bundle_version: str, now_ms: int) -> list[dict[str, Any]]:
        stamps, closes = bars.bars.timestamp.astype(np.int64), bars.bars.close
        last = self.last.get((model.name, model.version, symbol))
        if last is None:  # a new book: it opens, flat, on the newest closed bar
            first, held = len(stamps) - 1, 0.0
        else:
            first = max(int(np.searchsorted(stamps, last[0], side="right")), 1)
            if first >= len(stamps):
                return []  # nothing new since the last recorded bar
            held = last[1] if stamps[first - 1] == last[0] else float(positions[first - 1])
        rows = []
        for i in range(first, len(stamps)):
            change = closes[i] / closes[i - 1] - 1.0 if closes[i - 1] > 0 else np.nan
            ret = held * change - cost * abs(positions[i] - held)
            rows.append({
                "model": model.name, "version": model.version, "symbol": symbol, "bar_ms": int(stamps[i]),
                "role": model.role, "position": float(positions[i]), "close": float(closes[i]),
                "ret": float(ret) if np.isfinite(ret) else 0.0,  # an unpriced bar earns nothing
                "bundle_version": bundle_version, "recorded_ms": now_ms,
            })
            held = float(positions[i])
        return rows

    def _load_last(self, keys: list[Key]) -> None:
        """The last recorded (bar, position) of each book not known in memory (after a start)."""
        unknown = [key for key in keys if key not in self.last]
        if not unknown:
            return
        c = shadow_bars_table.c
        models = sorted({(name, version) for name, version, _ in unknown})
        newest = (sa.select(c.model, c.version, c.symbol, sa.func.max(c.bar_ms).label("bar_ms"))
                  .where(sa.tuple_(c.model, c.version).in_(models))
                  .group_by(c.model, c.version, c.symbol).subquery())
        query = sa.select(c.model, c.version, c.symbol, c.bar_ms, c.position).join(
            newest, sa.and_(c.model == newest.c.model, c.version == newest.c.version,
                            c.symbol == newest.c.symbol, c.bar_ms == newest.c.bar_ms))
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                self.last[(row.model, int(row.version), row.symbol)] = (int(row.bar_ms), float(row.position))

    def _write(self, rows: list[dict[str, Any]]) -> None:
        """Insert the rows; a bar already recorded (another process, a retried tick) is kept as it was."""
        if not rows:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(self._insert(shadow_bars_table).values(rows[start:start + _CHUNK])
                             .on_conflict_do_nothing())


def _research_costs() -> tuple[float, float]:
    """A bundle that carries no costs is priced at the research settings' (XRAY_RESEARCH_FEE, _SLIPPAGE)."""
    settings = load(ResearchSettings)
    return settings.fee, settings.slippage
