"""The Pareto plot of a study: every valid trial, the front highlighted, the chosen point marked.

Drawn on a bare `matplotlib.figure.Figure` with the Agg canvas — never `pyplot` — so that no global
figure state is created or leaked by a long-running process (Dagster, the runtime) that plots often.
"""

from __future__ import annotations

import io

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from xray_core.optimize.study import OptimizeResult


def pareto_plot_png(result: OptimizeResult, dpi: int = 110) -> bytes:
    """PNG bytes: mean max drawdown (x, lower is better) against mean total return (y, higher is better)."""
    fig = Figure(figsize=(7.0, 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    trials = result.trials
    valid = trials.filter(pl.col("status") == "ok")
    others = len(trials) - len(valid)
    ax.scatter(valid["mean_drawdown"] * 100, valid["mean_return"] * 100, s=16, c="#9aa5b1", alpha=0.7,
               label=f"trials ({len(valid)})")
    front = result.pareto.sort("mean_drawdown")
    if not front.is_empty():
        ax.step(front["mean_drawdown"] * 100, front["mean_return"] * 100, where="post", c="#d1495b", lw=1)
        ax.scatter(front["mean_drawdown"] * 100, front["mean_return"] * 100, s=30, c="#d1495b",
                   zorder=3, label=f"Pareto front ({len(front)})")
    summary = result.best_summary
    chosen = "defaults" if result.best_trial is None else f"trial {result.best_trial}"
    ax.scatter([summary["mean_drawdown"] * 100], [summary["mean_return"] * 100], s=220, marker="*",
               c="#edae49", edgecolors="black", linewidths=0.8, zorder=4, label=f"chosen: {chosen}")
    ax.axhline(0.0, c="black", lw=0.5)
    ax.set_xlabel("mean max drawdown over test windows (%)")
    ax.set_ylabel("mean total return over test windows (%)")
    note = f"; {others} invalid or non-trading trial(s) not shown" if others else ""
    ax.set_title(f"{result.strategy} — {result.study_name}: {len(trials)} trials{note}", fontsize=9)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
