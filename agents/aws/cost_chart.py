"""The digest's chart: the last 30 days, stacked by the top services, as a PNG."""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from agents.aws.cost_report import ChartSeries

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour-blind-safe palette (Okabe-Ito), then grey for "Other".
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER_COLOUR = "#999999"


def render_chart(chart: ChartSeries, *, title: str, metric: str) -> bytes:
    """Draw daily costs as stacked bars, provisional days hatched.

    Args:
        chart: Days and the per-service series (the last one may be "Other").
        title: The chart's title.
        metric: The Cost Explorer metric, named on the axis.

    Returns:
        PNG bytes.
    """
    # A Figure on the Agg canvas, without pyplot: no display, no global state, so
    # threads and forked workers can draw at the same time.
    figure = Figure(figsize=(10, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(chart.days)))
    bottoms = [0.0] * len(chart.days)
    provisional = set(chart.provisional)
    handles: list[Patch] = []
    for index, (service, values) in enumerate(chart.series.items()):
        colour = OTHER_COLOUR if service == "Other" else COLOURS[index % len(COLOURS)]
        bars = axes.bar(positions, values, bottom=bottoms, color=colour, width=0.8)
        for bar, day in zip(bars, chart.days, strict=True):
            if day in provisional:
                bar.set_hatch("///")
                bar.set_alpha(0.6)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
        handles.append(Patch(color=colour, label=_short(service)))
    if provisional:
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="///", label="estimated"))
    step = max(1, len(chart.days) // 10)
    axes.set_xticks(positions[::step])
    axes.set_xticklabels([d.strftime("%b %d") for d in chart.days[::step]], fontsize=8)
    axes.set_ylabel(f"USD per day ({metric})")
    axes.set_title(title, fontsize=11)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if handles:
        axes.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _short(service: str, limit: int = 38) -> str:
    return service if len(service) <= limit else service[: limit - 1] + "…"
