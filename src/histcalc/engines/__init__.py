"""Compute engines: each runs planned tasks and returns one reduced :class:`Partial`."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int, int], None]
"""Called with (tasks done, tasks total, files failed so far) as tasks finish."""

ENGINES = ("spark", "local")
