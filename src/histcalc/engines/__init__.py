"""Compute engines: each runs planned tasks and returns one reduced :class:`Partial`."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]
"""Called with (tasks done, tasks total) as tasks finish."""

ENGINES = ("spark", "local")
