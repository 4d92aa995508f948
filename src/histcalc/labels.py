"""Zone labels for one raster window: layers of window-local ids (uint16, int32 past 65,534 zones), 0 = no zone.

The runs of pixels inside each zone come from :mod:`histcalc.label_runs` (the pixel-centre rule, or
``all_touched``); :mod:`histcalc.label_burn` burns them into one layer, or into several when zones share pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import UsageError
from histcalc.label_burn import Labels, conflict_layers, fill_layers, single_layer
from histcalc.label_runs import centre_runs, concat_runs, edge_runs, edge_table, pixel_edges, union_runs, window_bounds
from histcalc.zones import ZoneSubset

log = logging.getLogger(__name__)

U16_ZONES = 65_535
"""A window with fewer zones than this has uint16 labels (local ids 1..zones), int32 otherwise."""


def label_layers(
    subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
) -> list[Labels]:
    """The label layers of a window (``window_transform``: rasterio Affine, no rotation); only non-empty ones."""
    labels = window_labels(subset, window_transform, shape, all_touched)
    ids = labels.positions()
    return [ids[layer] for layer in labels.layers]


def window_labels(
    subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
) -> WindowLabels:
    """:func:`label_layers` in window-local ids (see :class:`WindowLabels`), as the counting uses them."""
    a, b, c, d, e, f = tuple(window_transform)[:6]
    if b != 0 or d != 0:
        raise UsageError("zone labels need a raster grid without rotation terms")
    height, width = shape
    none = WindowLabels([], np.zeros(0, np.int64), ())
    if len(subset) == 0 or height == 0 or width == 0:
        return none
    edges = pixel_edges(edge_table(subset), subset.bounds, (a, c, e, f), window_bounds(a, c, e, f, height, width))
    rows, zone, start, stop = centre_runs(edges, shape)
    if all_touched:
        rows, zone, start, stop = union_runs(concat_runs((rows, zone, start, stop), edge_runs(edges, shape)), shape)
    if len(rows) == 0:
        return none
    zones, local = _zone_ids(zone)  # local id = 1 + index into zones
    dtype = np.uint16 if len(zones) < U16_ZONES else np.int32
    single = None if all_touched else single_layer(rows, local, start, stop, shape, dtype)  # neighbours touch
    if single is not None:
        return WindowLabels([single], zones, (int((stop - start).sum()),))
    zone_layers = conflict_layers(rows, local, start, stop, shape, len(zones))
    stacked = fill_layers(rows, local, start, stop, zone_layers, shape, dtype)
    return WindowLabels(list(stacked), zones, tuple(int(np.count_nonzero(layer)) for layer in stacked), stacked)


def _zone_ids(zone: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(zone, return_inverse=True)``; in one pass when ``zone`` is sorted, as the runs come out."""
    change = zone[1:] != zone[:-1]
    if len(zone) == 0 or not (zone[1:] >= zone[:-1]).all():
        zones, local = np.unique(zone, return_inverse=True)
        return zones, local.reshape(-1)
    local = np.zeros(len(zone), dtype=np.int64)
    np.cumsum(change, out=local[1:])
    return zone[np.concatenate([[True], change])], local


@dataclass(frozen=True)
class WindowLabels:
    """A window's label layers in window-local ids: 1 + index into ``zones`` (0 = no zone).

    ``zones`` are the subset positions of the zones with a pixel in the window, increasing. Counting into
    local ids needs a dense array of the window's zones only (a tenth of a tile's, say), not of every zone
    the file meets. The layers are read-only: they are shared between the files of one grid.
    """

    layers: Sequence[npt.NDArray[np.integer[Any]]]  # uint16 while the window has < U16_ZONES zones, else int32
    zones: npt.NDArray[np.int64]
    pixels: tuple[int, ...]
    """The labelled pixels of each layer."""
    block: npt.NDArray[np.integer[Any]] | None = None
    """Several layers as one array (``layers`` are its views), as the counting kernel takes them."""

    def stacked(self) -> npt.NDArray[np.integer[Any]]:
        """The layers as one ``(layers, height, width)`` array, a view where they were made so."""
        if self.block is not None:
            return self.block
        return self.layers[0][None] if len(self.layers) == 1 else np.stack(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers) + self.zones.nbytes  # views of block: its bytes

    def positions(self) -> npt.NDArray[np.int32]:
        """Local id -> 1 + subset position (0 -> 0): the layers' labels in the subset's numbering."""
        return np.concatenate([[0], self.zones + 1]).astype(np.int32)
