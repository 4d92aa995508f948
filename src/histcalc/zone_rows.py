"""Dense ``[row, DN]`` counts whose rows are lent to the zones that are open in a task.

A zone takes a row when the first window that meets it is counted and gives it back when it is done
(:meth:`ZoneRows.release`), after its row has been read out; or (:meth:`ZoneRows.every_zone`) every zone
has its row from the start. Row 0 is never lent: it stands for "no zone"
in a row map. The rows grow (doubling) when more zones are open at once than there are free rows.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
_SPARE: dict[tuple[int, int, str], tuple[npt.NDArray[Any], I64]] = {}
_SPARE_LOCK = threading.Lock()


class ZoneRows:
    """Counts and tallies (nodata by mask band, masked) per lent row, for the zones of one subset."""

    def __init__(self, zones: int, n_dn: int, dtype: type[np.integer[Any]], rows: int = 0) -> None:
        self.n_dn, self.dtype = n_dn, dtype
        self.counts = np.zeros((rows + 1, n_dn), dtype)
        self.tallies = np.zeros((rows + 1, 2), np.int64)
        self._row_of = np.zeros(zones, np.int32)  # 0: the zone has no row
        self._free = np.arange(rows, 0, -1, dtype=np.int32)  # a stack: lowest rows lent first
        self._n_free = rows

    @classmethod
    def every_zone(cls, zones: int, n_dn: int, dtype: type[np.integer[Any]]) -> ZoneRows:
        """Rows for all ``zones`` at once, zone ``k`` in row ``k + 1`` (read in zone order, nothing lent).

        The arrays of the process's last task of the same size are reused (:meth:`give_back`): the dates of
        a tile share their subset, and touching 51 MB of fresh pages per task (100,000 parcels) cost more
        than counting into them. Fresh ones come from np.zeros, which touches no page until a zone counts.
        """
        with _SPARE_LOCK:
            spare = _SPARE.pop((zones, n_dn, np.dtype(dtype).str), None)
        rows = cls(zones, n_dn, dtype)
        rows.counts = np.zeros((zones + 1, n_dn), dtype) if spare is None else spare[0]
        rows.tallies = np.zeros((zones + 1, 2), np.int64) if spare is None else spare[1]
        rows._row_of = np.arange(1, zones + 1, dtype=np.int32)
        rows._free = np.zeros(zones, np.int32)  # room for them all to come back
        return rows

    def give_back(self) -> None:
        """Keep these arrays for the process's next task of the same size; every row must be zero again
        (read out with ``reset``). One pair is kept: the last one given back."""
        with _SPARE_LOCK:
            _SPARE.clear()
            _SPARE[(len(self.counts) - 1, self.n_dn, np.dtype(self.dtype).str)] = (self.counts, self.tallies)

    @property
    def open(self) -> I64:
        """The zones (subset positions) that hold a row, increasing."""
        return np.flatnonzero(self._row_of)

    def rowmap(self, zones: I64) -> I32:
        """Local id -> row for a window's ``zones`` (local id ``k + 1`` is ``zones[k]``; 0 -> 0); lends rows."""
        rows = self._row_of[zones]
        new = np.flatnonzero(rows == 0)
        if len(new):
            if len(new) > self._n_free:
                self._grow(len(new) - self._n_free)
            lent = self._free[self._n_free - len(new) : self._n_free][::-1]
            self._n_free -= len(new)
            rows[new] = lent
            self._row_of[zones[new]] = lent
        return np.concatenate([np.zeros(1, np.int32), rows])

    def rows_of(self, zones: I64) -> I64:
        """The rows of open ``zones``."""
        return self._row_of[zones].astype(np.int64)

    def release(self, zones: I64) -> None:
        """``zones`` are done: their rows (read out and zeroed by the caller) go back to the free stack."""
        rows = self._row_of[zones]
        self._row_of[zones] = 0
        self._free[self._n_free : self._n_free + len(rows)] = rows[::-1]
        self._n_free += len(rows)

    def _grow(self, short: int) -> None:
        old = len(self.counts) - 1
        rows = max(2 * old, old + short, 64)
        counts = np.zeros((rows + 1, self.n_dn), self.dtype)
        counts[: old + 1] = self.counts
        tallies = np.zeros((rows + 1, 2), np.int64)
        tallies[: old + 1] = self.tallies
        self.counts, self.tallies = counts, tallies
        free = np.zeros(rows, np.int32)
        free[: self._n_free] = self._free[: self._n_free]
        # the new rows go under the free ones, so that rows already touched are lent first
        added = np.arange(rows, old, -1, dtype=np.int32)
        free[len(added) : len(added) + self._n_free] = free[: self._n_free].copy()
        free[: len(added)] = added
        self._free, self._n_free = free, self._n_free + len(added)
