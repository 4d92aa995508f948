"""Plots of a result document (the JSON written by ``--output``); matplotlib is optional.

Everything drawn is computed from the counts in the document (percentiles too), so a result
written with any ``--percentiles`` plots the same; bins are regrouped into at most
:data:`MAX_BARS` bars for display.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from histcalc.errors import MissingDependency, OutputError, UsageError
from histcalc.histogram import Histogram

MAX_BARS = 200
BANDS = (2.0, 25.0, 50.0, 75.0, 98.0)
_GREEN = "#4c8c4a"


def check_plot_path(path: str | Path) -> None:
    """Fail before any work when matplotlib is missing or ``path``'s suffix is no image type it writes."""
    pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in kinds:
        raise UsageError(f"cannot plot to {path}: the name must end in one of .{', .'.join(sorted(kinds))}")


def plot_result(doc: dict[str, Any], path: str | Path) -> None:
    """Write :func:`figure` of ``doc`` to ``path`` (the image type from its suffix)."""
    plt = pyplot()
    fig = figure(doc)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)


def figure(doc: dict[str, Any]) -> Any:
    """The histogram; with groups, also each group's median and 25-75 / 2-98 percentile bands."""
    plt = pyplot()
    total = Histogram.from_dict(doc)
    groups = [(g["group"], _group_histogram(doc, g)) for g in doc.get("groups") or []]
    fig, axes = plt.subplots(2 if groups else 1, 1, figsize=(9, 7 if groups else 4.5), squeeze=False)
    _histogram_panel(axes[0][0], total, doc)
    if groups:
        _groups_panel(axes[1][0], groups, variable_label(doc))
    fig.tight_layout()
    return fig


def plot_file(result_json: str | Path, path: str | Path) -> None:
    """Redraw the plot of a saved result."""
    try:
        doc = json.loads(Path(result_json).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read result {result_json}: {exc}") from exc
    if not isinstance(doc, dict) or "edges" not in doc or "counts" not in doc:
        raise UsageError(f"{result_json} is not a histcalc result (no edges/counts)")
    plot_result(doc, path)


def display_bars(h: Histogram, max_bars: int = MAX_BARS) -> tuple[np.ndarray, np.ndarray, int]:
    """(edges, counts, bins per bar): the span of non-empty bins regrouped into at most ``max_bars`` bars."""
    nz = np.flatnonzero(h.counts)
    if nz.size == 0:
        return h.bins.array, h.counts, 1
    first, last = int(nz[0]), int(nz[-1]) + 1
    per_bar = math.ceil((last - first) / max_bars)
    starts = np.arange(first, last, per_bar)
    counts = np.add.reduceat(h.counts[first:last], starts - first)
    edges = h.bins.array
    return np.append(edges[starts], edges[last]), counts, per_bar


def variable_label(doc: dict[str, Any]) -> str:
    """The variable's name (the asset, e.g. NDVI) and its unit when the result has one."""
    query = doc.get("query") or {}
    name = doc.get("variable") or query.get("asset") or "value"
    unit = doc.get("unit")
    return f"{name} ({unit})" if unit else str(name)


def title_of(doc: dict[str, Any]) -> str:
    """Collection, dates, area and files, as far as the result records them."""
    query = doc.get("query") or {}
    what = " ".join(str(x) for x in (query.get("collection"), doc.get("variable") or query.get("asset")) if x)
    days = _dates(query.get("start_date"), query.get("end_date"))
    files = doc.get("files") or {}
    counted = f"{files.get('ok', '?')} of {files.get('total', '?')} files"
    return f"{what or 'rasters'}, {days}, {_area(query)}: {counted}"


def _dates(start: str | None, end: str | None) -> str:
    if start and end:
        return f"{start} to {end}"
    return f"from {start}" if start else (f"until {end}" if end else "all dates")


def _area(query: dict[str, Any]) -> str:
    if query.get("aoi"):
        return f"AOI {Path(str(query['aoi'])).name}"
    bbox = query.get("bbox")
    return "bbox " + ", ".join(f"{v:g}" for v in bbox) if bbox else "whole files"


def _group_histogram(doc: dict[str, Any], group: dict[str, Any]) -> Histogram:
    return Histogram.from_dict({**group, "edges": doc["edges"], "bins_kind": doc.get("bins_kind")})


def _histogram_panel(ax: Any, h: Histogram, doc: dict[str, Any]) -> None:
    ax.set_title(title_of(doc), fontsize=9)
    ax.set_xlabel(variable_label(doc))
    if h.empty:
        _no_data(ax, h)
        return
    edges, counts, per_bar = display_bars(h)
    ax.stairs(counts, edges, fill=True, color=_GREEN, alpha=0.85)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylabel("pixels" if per_bar == 1 else f"pixels per {per_bar} bins")
    median = h.percentile(50)
    ax.axvline(median, color="black", lw=1, ls="--", label=f"median {median:.4g}")
    ax.legend(loc="upper left", fontsize=8)


def _no_data(ax: Any, h: Histogram) -> None:
    text = f"no data: 0 pixels counted\n({h.nodata:,} nodata, {h.masked:,} masked, {h.below + h.above:,} out of range)"
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _groups_panel(ax: Any, groups: list[tuple[str, Histogram]], label: str) -> None:
    keys = [k for k, _ in groups]
    x = np.arange(len(keys))
    table = np.array([[h.percentile(q) for q in BANDS] for _, h in groups], dtype=float)  # NaN: empty group
    ax.fill_between(x, table[:, 0], table[:, 4], color=_GREEN, alpha=0.15, label="p2-p98")
    ax.fill_between(x, table[:, 1], table[:, 3], color=_GREEN, alpha=0.35, label="p25-p75")
    ax.plot(x, table[:, 2], "o-", color="black", lw=1.5, ms=4, label="median")
    empty = [i for i, (_, h) in enumerate(groups) if h.empty]
    if empty:
        ax.plot(x[empty], np.zeros(len(empty)), "x", color="red", transform=ax.get_xaxis_transform(), label="no data")
    ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(label)
    ax.set_title("per group: median and percentile bands, from the counts", fontsize=9)
    ax.legend(loc="best", fontsize=8)


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), or MissingDependency."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependency("plots need matplotlib: pip install 'histcalc[plot]'") from exc
    return plt
