"""PNG plots of a result document (the JSON written by ``--output``); matplotlib is optional."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from histcalc.errors import OutputError, UsageError


def plot_result(doc: dict[str, Any], path: str | Path) -> None:
    """The histogram; with groups, also each group's median and 25-75 / 2-98 percentile bands."""
    plt = _pyplot()
    groups = doc.get("groups") or []
    fig, axes = plt.subplots(2 if groups else 1, 1, figsize=(9, 7 if groups else 4.5), squeeze=False)
    _histogram_panel(axes[0][0], doc)
    if groups:
        _groups_panel(axes[1][0], groups)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)


def plot_file(result_json: str | Path, path: str | Path) -> None:
    """Redraw the plot of a saved result."""
    try:
        doc = json.loads(Path(result_json).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read result {result_json}: {exc}") from exc
    if not isinstance(doc, dict) or "edges" not in doc or "counts" not in doc:
        raise UsageError(f"{result_json} is not a histcalc result (no edges/counts)")
    plot_result(doc, path)


def _histogram_panel(ax: Any, doc: dict[str, Any]) -> None:
    edges = np.asarray(doc["edges"], dtype=float)
    counts = np.asarray(doc["counts"], dtype=float)
    ax.stairs(counts, edges, fill=True, color="#4c8c4a", alpha=0.85)
    query = doc.get("query") or {}
    title = f"{query.get('collection') or 'rasters'} {query.get('asset') or ''}".strip()
    days = f"{query.get('start_date') or '...'} to {query.get('end_date') or '...'}"
    files = doc.get("files") or {}
    ax.set_title(f"{title}, {days}: {files.get('ok', '?')} of {files.get('total', '?')} files", fontsize=10)
    ax.set_xlabel("value")
    ax.set_ylabel("pixels")
    stats = doc.get("stats") or {}
    median = (stats.get("percentiles") or {}).get("p50")
    if median is not None:
        ax.axvline(median, color="black", lw=1, ls="--", label=f"median {median:.3g}")
        ax.legend(loc="upper left", fontsize=8)
    nz = np.flatnonzero(counts)
    if nz.size:
        ax.set_xlim(edges[nz[0]], edges[nz[-1] + 1])


def _groups_panel(ax: Any, groups: list[dict[str, Any]]) -> None:
    keys = [g["group"] for g in groups]
    pct = [(g.get("stats") or {}).get("percentiles") or {} for g in groups]
    x = np.arange(len(keys))

    def series(name: str) -> np.ndarray:
        return np.array([np.nan if p.get(name) is None else p[name] for p in pct], dtype=float)

    if "p2" in pct[0] and "p98" in pct[0]:
        ax.fill_between(x, series("p2"), series("p98"), color="#4c8c4a", alpha=0.15, label="p2-p98")
    if "p25" in pct[0] and "p75" in pct[0]:
        ax.fill_between(x, series("p25"), series("p75"), color="#4c8c4a", alpha=0.35, label="p25-p75")
    ax.plot(x, series("p50"), "o-", color="black", lw=1.5, ms=4, label="median")
    ax.set_xticks(x, keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("value")
    ax.set_title("per group", fontsize=10)
    ax.legend(loc="best", fontsize=8)


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise UsageError("plots need matplotlib: pip install 'histcalc[plot]'") from exc
    return plt
