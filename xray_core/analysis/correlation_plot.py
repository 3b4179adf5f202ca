"""The correlation heatmap a Dagster asset embeds in its metadata, as PNG bytes.

Drawn on a bare `Figure` with the Agg canvas, never through pyplot: pyplot keeps global state and a
GUI backend, neither of which belongs in a worker process that renders plots from several threads.
Rows and columns follow the dendrogram order, so each cluster is a contiguous block on the diagonal,
outlined in black; NaN correlations (too little overlap) are grey.
"""

from __future__ import annotations

import io

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from xray_core.analysis.correlation_report import CorrelationReport

ANNOTATE_UP_TO = 16  # symbols; beyond that the numbers in the cells are too small to read


def correlation_heatmap_png(report: CorrelationReport, *, recent: bool = False, dpi: int = 100) -> bytes:
    """The report's correlation matrix (or its latest-window matrix with `recent`) as a PNG heatmap,
    sized to stay readable from a handful of symbols to about fifty."""
    order = list(report.order)
    index = [report.symbols.index(s) for s in order]
    corr = report.matrix(recent)[np.ix_(index, index)]
    n = len(order)
    side = float(np.clip(0.3 * n + 3.0, 5.0, 18.0))
    font = float(np.clip(11.0 - 0.12 * n, 5.0, 10.0))

    figure = Figure(figsize=(side + 1.5, side), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="0.75")
    image = axes.imshow(np.ma.masked_invalid(corr), cmap=cmap, vmin=-1.0, vmax=1.0, interpolation="nearest")
    axes.set_xticks(range(n), labels=order, rotation=90, fontsize=font)
    axes.set_yticks(range(n), labels=order, fontsize=font)
    axes.tick_params(length=0)

    labels = [report.clusters[s] for s in order]
    first = 0
    for k in range(1, n + 1):
        if k == n or labels[k] != labels[first]:
            size = k - first
            axes.add_patch(Rectangle((first - 0.5, first - 0.5), size, size, fill=False,
                                     edgecolor="black", linewidth=2.0))
            first = k
    if n <= ANNOTATE_UP_TO:
        for i in range(n):
            for j in range(n):
                if np.isfinite(corr[i, j]):
                    axes.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=font * 0.8,
                              color="white" if abs(corr[i, j]) > 0.6 else "black")

    figure.colorbar(image, ax=axes, shrink=0.8, label="Pearson correlation of log returns")
    period = f"last {report.window} returns" if recent else f"{report.n_returns} returns"
    axes.set_title(
        f"Return correlation, {report.start:%Y-%m-%d} to {report.end:%Y-%m-%d} ({period}), "
        f"{len(set(labels))} clusters",
        fontsize=font + 1,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
