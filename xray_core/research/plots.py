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
