"""Output options checked before any pixel is read: writable, distinct, their libraries installed."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from histcalc.errors import UsageError

OUTPUT_FLAGS = (
    ("--output", "output"),
    ("--csv", "csv"),
    ("--parquet", "parquet"),
    ("--plot", "plot"),
    ("--zone-stats", "zone_stats"),
)
DATASET_FLAGS = ("--parquet", "--zone-stats")  # with --zones, a directory: a Parquet dataset (histcalc.zone_dataset)


def check_writable(*paths: str | None) -> None:
    for path in paths:
        if path is None:
            continue
        folder = Path(path).resolve().parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise UsageError(f"cannot write {path}: {folder} is not a directory")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"cannot write {path}: {folder} is not writable")


def check_outputs(ns: argparse.Namespace) -> None:
    """Every output option, before any pixel is read: writable, distinct, and its library installed."""
    paths = {flag: getattr(ns, dest) for flag, dest in OUTPUT_FLAGS if getattr(ns, dest, None)}
    check_writable(*paths.values())
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        target = Path(path).resolve()
        if target in seen:
            raise UsageError(f"{seen[target]} and {flag} name the same file {path}")
        if target.is_dir() and not (flag in DATASET_FLAGS and getattr(ns, "zones", None)):
            raise UsageError(f"{flag} {path} is a directory, not a file")
        seen[target] = flag
    if "--parquet" in paths:
        from histcalc.report import require_pyarrow

        require_pyarrow()
    if "--plot" in paths:
        from histcalc.plot import check_plot_path

        check_plot_path(paths["--plot"])
