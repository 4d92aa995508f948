"""Build hook: compiles histcalc's C counting kernels (src/histcalc/_native_*.c) into the wheel.

The kernels are a plain shared library with no Python API, loaded with ctypes, so one build serves
every Python version: the wheel is tagged ``py3-none-<platform>``. Without a C compiler (or with
``HISTCALC_NO_C_KERNELS=1``) the wheel is pure Python, as before, and histcalc counts with numba or
numpy (``HISTCALC_KERNEL=auto`` picks what is there). An editable install compiles the library beside
the sources, where the package is imported from. No -march flags: the wheel runs on any CPU of its
platform.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = Path("src") / "histcalc"
LIBRARY = "histcalc-kernels.dll" if sys.platform == "win32" else "histcalc-kernels.so"
FLAGS = ["-O3", "-fPIC", "-shared", "-fvisibility=hidden", "-std=c99", "-Wall"]


class NativeKernelsHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("HISTCALC_NO_C_KERNELS", "").strip() not in ("", "0"):
            self.app.display_info("histcalc: HISTCALC_NO_C_KERNELS is set, building without the C kernels")
            return
        root = Path(self.root)
        if version == "editable":
            target = root / PACKAGE / LIBRARY
        else:
            target = Path(tempfile.mkdtemp(prefix="histcalc-kernels-")) / LIBRARY
        if not self._compile(sorted((root / PACKAGE).glob("_native_*.c")), target):
            return
        if version != "editable":
            build_data["force_include"][str(target)] = f"histcalc/{LIBRARY}"
        build_data["pure_python"] = False
        build_data["tag"] = f"py3-none-{sysconfig.get_platform().replace('-', '_').replace('.', '_')}"

    def _compile(self, sources: list[Path], target: Path) -> bool:
        compiler = shlex.split(os.environ.get("CC") or "cc")
        command = [*compiler, *FLAGS, "-o", str(target), *(str(s) for s in sources), "-lm"]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.app.display_warning(
                f"histcalc: could not compile the C kernels ({' '.join(command)}): {detail.strip()[:500]}\n"
                "histcalc: the wheel is pure Python; it counts with numba or numpy (slower start, same counts)"
            )
            return False
        self.app.display_info(f"histcalc: compiled the C kernels into {LIBRARY}")
        return True
