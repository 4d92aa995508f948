"""`python -m build` puts the compiled C kernels into a platform wheel, and makes a pure wheel without a compiler."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = "histcalc/histcalc-kernels.so"


def build_wheel(out: Path, **env: str) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (wheel,) = out.glob("histcalc-*.whl")
    return wheel


@pytest.mark.skipif(sys.platform == "win32", reason="the library is a .dll there")
def test_the_wheel_holds_the_c_kernels_and_is_tagged_for_its_platform(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "dist")
    assert wheel.name.startswith("histcalc-") and "-py3-none-" in wheel.name and not wheel.name.endswith("-any.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert LIBRARY in names and "histcalc/_native.py" in names
        assert not [n for n in names if n.endswith((".c", ".h"))]  # the sources stay in the sdist
        tags = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
        z.extract(LIBRARY, tmp_path)
    assert "Root-Is-Purelib: false" in tags
    library = ctypes.CDLL(str(tmp_path / LIBRARY))
    assert library.count_dn_u8 and library.count_zones_u16_u16_i64 and library.zone_cell_stats


def test_without_a_compiler_the_wheel_is_pure_python(tmp_path: Path) -> None:
    """HISTCALC_NO_C_KERNELS=1, as when no C compiler is found (the build warns and goes on)."""
    wheel = build_wheel(tmp_path / "dist", HISTCALC_NO_C_KERNELS="1")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as z:
        assert LIBRARY not in z.namelist()
    missing = build_wheel(tmp_path / "nocc", CC=str(tmp_path / "no-such-compiler"))
    assert missing.name.endswith("-py3-none-any.whl")
