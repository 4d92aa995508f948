"""Comparing zone tables field by field."""

from __future__ import annotations

import numpy as np

from histcalc.zonal import ZoneTable


def assert_same_table(got: ZoneTable, want: ZoneTable) -> None:
    """Every field equal, in the same dtype (NaN equal to NaN, -0.0 to 0.0)."""
    for name in ZoneTable.__dataclass_fields__:
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype, (name, a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=name)
