"""One error root for histcalc; every leaf says what went wrong in one line.

Each class carries the process exit code the CLI returns for it, so scripts can tell
"bad input" from "nothing matched" from "files failed" without parsing messages.
"""

from __future__ import annotations


class HistcalcError(Exception):
    """Root of every error histcalc raises on purpose."""

    exit_code: int = 1


class UsageError(HistcalcError, ValueError):
    """The user asked for something impossible (bad flag value, bad combination)."""

    exit_code = 2


class InvalidBBox(UsageError):
    """A bounding box that is not W,S,E,N in EPSG:4326 with W < E and S < N."""


class InvalidDate(UsageError):
    """A date that is not YYYY-MM-DD, or a range whose end is before its start."""


class InvalidBins(UsageError):
    """Bin count or range that cannot define histogram edges."""


class MissingDependency(UsageError, ImportError):
    """An optional package (pyarrow, matplotlib, pandas, xarray) is needed and not installed."""


class InvalidZones(UsageError):
    """A zones file that cannot be read, or whose ids are missing or duplicated."""


class IncompatibleHistograms(HistcalcError, ValueError):
    """Two histograms with different bin edges cannot be added."""


class CatalogError(HistcalcError):
    """The catalog (STAC API, static catalog or directory) cannot be read or searched."""

    exit_code = 3


class NoScenesFound(HistcalcError):
    """The query matched no raster files: nothing to count."""

    exit_code = 4


class RasterReadError(HistcalcError, OSError):
    """A raster file could not be opened or read."""

    exit_code = 5


class TooManyFailures(HistcalcError):
    """More files failed than the error policy allows."""

    exit_code = 5


class EngineError(HistcalcError, RuntimeError):
    """The compute engine (Spark or the local pool) could not run the job."""

    exit_code = 6


class AccountingError(EngineError):
    """A task's tallies do not add up to the pixels it read: a bug, never a result to trust."""


class JavaNotFound(EngineError):
    """Spark needs a Java runtime (17 or newer) and none was found."""


class OutputError(HistcalcError, OSError):
    """A result file could not be written."""

    exit_code = 7


class AuthError(HistcalcError):
    """Logging in, or reading with a login, failed (see the leaves: each has its own exit code)."""

    exit_code = 9


class LoginFailed(AuthError):
    """The provider refused the username and password (wrong credentials, or a disabled account)."""

    exit_code = 9


class LoginExpired(AuthError):
    """No stored login, or its refresh token expired or was revoked: ``histcalc login`` again."""

    exit_code = 10


class ProviderUnreachable(AuthError):
    """The login provider cannot be reached, or does not answer like an OpenID Connect token endpoint."""

    exit_code = 11


class AccessDenied(AuthError):
    """The data server refused the token (HTTP 401/403) before any pixel was read."""

    exit_code = 12
