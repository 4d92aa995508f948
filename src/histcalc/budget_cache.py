"""A per-process cache of values that know their size, within a byte budget, grouped by tile grid.

Shared by the caches that let every date of a tile grid reuse what its first date computed
(:mod:`histcalc.label_cache`, :mod:`histcalc.aoi_masks`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)


class BudgetCache(Generic[V]):
    """Values by key, in groups (a tile grid's windows, say); beyond ``max_bytes`` the least recently used
    of other groups go first.

    A group larger than the budget keeps the values it already holds and leaves its newest uncached: its
    windows come back in the same order at every date, and dropping the least recently used would drop each
    window just before it is needed again (no hit at all; a tile of 100,000 parcels with ``--all-touched``
    has 405 MB of labels). A value alone in the cache always stays.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[Hashable, tuple[Hashable, V]] = OrderedDict()

    def _get(self, key: Hashable, make: Callable[[], V], group: Hashable = None) -> V:
        """The value of ``key`` (in ``group``; None: a group of its own), made by ``make()`` on a miss."""
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found[1]
        self.misses += 1
        value = make()
        group = key if group is None else group
        size = value.nbytes
        for old in [k for k, (g, _) in self._entries.items() if g != group]:  # oldest first
            if self._bytes + size <= self.max_bytes:
                break
            self._bytes -= self._entries.pop(old)[1].nbytes
        if self._entries and self._bytes + size > self.max_bytes:
            return value  # the rest is this group's: keep what it holds
        self._entries[key] = (group, value)
        self._bytes += size
        return value
