"""Plots for the research assets' metadata (matplotlib, Agg backend, no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def equity_curves_png(curves: Mapping[str, pl.DataFrame], title: str, cash: float) -> bytes:
    """One line per label (timestamp, equity frames), normalised to the starting cash."""
    figure = Figure(figsize=(9, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for label, curve in curves.items():
        axes.plot(
            curve["timestamp"].to_list(), (curve["equity"] / cash).to_list(), label=label, linewidth=1.2
        )
    axes.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    axes.set_title(title)
    axes.set_ylabel("equity / starting cash")
    axes.grid(alpha=0.3)
    if curves:
        axes.legend(fontsize=8, loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


_LINES = (("oos", "model (out of sample)", "tab:blue"), ("bh", "buy and hold", "tab:orange"),
          ("flat", "flat", "grey"))


def oos_equity_figure(curves: pl.DataFrame, title: str, fold: int | None = None) -> Figure:
    """A model's out-of-sample equity against buy-and-hold and flat: one panel per fold of
    `curves` (`xray_core.learning.evaluate.fold_equity`: fold, timestamp, oos, bh, flat), or only
    fold `fold`. Each panel starts at 1 where its fold starts."""
    folds = sorted(set(curves["fold"].to_list())) if fold is None else [fold]
    columns = min(3, max(1, len(folds)))
    rows = max(1, -(-len(folds) // columns))
    figure = Figure(figsize=(4.2 * columns, 3.2 * rows), dpi=100)
    FigureCanvasAgg(figure)
    for n, k in enumerate(folds):
        axes = figure.add_subplot(rows, columns, n + 1)
        part = curves.filter(pl.col("fold") == k)
        for column, label, color in _LINES:
            axes.plot(part["timestamp"].to_list(), part[column].to_list(), label=label, color=color,
                      linewidth=1.0 if column != "flat" else 0.8,
                      linestyle="--" if column == "flat" else "-")
        axes.set_title(f"fold {k}", fontsize=9)
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize=7)
        if n == 0:
            axes.set_ylabel("equity (fold start = 1)", fontsize=8)
            axes.legend(fontsize=7, loc="upper left")
    figure.suptitle(title, fontsize=10)
    figure.autofmt_xdate()
    figure.tight_layout()
    return figure


def png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
