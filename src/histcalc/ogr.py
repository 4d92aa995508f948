"""pyogrio, imported without pandas and geopandas: every vector read and write of histcalc goes through here.

Importing the ``pyogrio`` package imports pandas and geopandas, when they are installed, only to read their
versions (``pyogrio._compat``): 0.3-0.4 s, a fifth of a one-date zonal job over a tile. histcalc uses
``pyogrio.raw`` and ``read_info`` alone, which need neither. While pyogrio is imported, a stand-in for each
of the two answers ``__version__`` from the installed distribution's metadata, and imports the real module
for any other attribute; the stand-ins leave ``sys.modules`` as soon as pyogrio is in, so any later
``import pandas`` (pyogrio's own ``read_dataframe`` included) gets the real module.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import threading
import types
from typing import Any

# the modules pyogrio imports only to read their versions (the distribution names are the same)
DEFERRED = ("pandas", "geopandas")

_lock = threading.Lock()


class _VersionOnly(types.ModuleType):
    """A module that knows its version and imports the real module for anything else."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__path__":
            raise AttributeError(name)
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _stand_in(name: str) -> _VersionOnly | None:
    """A stand-in for the module ``name`` if it is installed and not imported yet, else None."""
    if name in sys.modules or importlib.util.find_spec(name) is None:
        return None
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:  # installed without metadata: let it be imported
        return None
    module = _VersionOnly(name)
    setattr(module, "__version__", version)  # noqa: B010 (a module attribute mypy cannot see)
    return module


def pyogrio() -> types.ModuleType:
    """The pyogrio package, with ``pyogrio.raw`` imported."""
    if "pyogrio.raw" in sys.modules:
        return sys.modules["pyogrio"]
    with _lock:
        placed = {}
        for name in DEFERRED:
            stand_in = _stand_in(name)
            if stand_in is not None:
                placed[name] = sys.modules[name] = stand_in
        try:
            importlib.import_module("pyogrio.raw")  # and with it the package
        finally:
            for name, stand_in in placed.items():
                if sys.modules.get(name) is stand_in:
                    del sys.modules[name]
    return sys.modules["pyogrio"]
