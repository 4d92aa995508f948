"""A per-process cache of values that know their size: least recently used dropped beyond a byte budget.

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
    """Values by key; beyond ``max_bytes`` the least recently used go (the newest always stays)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[Hashable, V] = OrderedDict()

    def _get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value of ``key``, made by ``make()`` on a miss."""
        found = self._entries.get(key)
        if found is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return found
        self.misses += 1
        value = make()
        self._entries[key] = value
        self._bytes += value.nbytes
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes
        return value
