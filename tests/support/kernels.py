"""Choosing the counting kernels in a test: ``HISTCALC_KERNEL`` set for a block, then as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def kernel_env(name: str) -> Iterator[None]:
    before = os.environ.get("HISTCALC_KERNEL")
    os.environ["HISTCALC_KERNEL"] = name
    try:
        yield
    finally:
        if before is None:
            del os.environ["HISTCALC_KERNEL"]
        else:
            os.environ["HISTCALC_KERNEL"] = before
