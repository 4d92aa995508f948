"""The stored login: the refresh token only, in a file only its owner can read.

``$XDG_CONFIG_HOME/histcalc/login.json`` (default ``~/.config/histcalc/login.json``), mode 0600, in a
0700 directory, written atomically (a temporary file beside it, then ``os.replace``), holding the
provider's token URL and client id, the user name, and the refresh token. Never a password, never an
access token (those live in memory, and in the job's header file while a job runs).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from histcalc.errors import LoginExpired, OutputError
from histcalc.oidc import RELOGIN, Provider
from histcalc.redact import register_secret

FILE_NAME = "login.json"


@dataclass(frozen=True)
class StoredLogin:
    token_url: str
    client_id: str
    username: str
    refresh_token: str = field(repr=False)

    def provider(self) -> Provider:
        return Provider(self.token_url, self.client_id)


def config_dir(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "histcalc"


def login_path() -> Path:
    return config_dir() / FILE_NAME


def load() -> StoredLogin | None:
    """The stored login, or None when there is none; a damaged file is a login to redo."""
    path = login_path()
    try:
        data = json.loads(path.read_text())
        login = StoredLogin(
            str(data["token_url"]), str(data["client_id"]), str(data["username"]), str(data["refresh_token"])
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LoginExpired(f"the stored login {path} cannot be read ({type(exc).__name__}): {RELOGIN}") from None
    register_secret(login.refresh_token)
    return login


def save(login: StoredLogin) -> Path:
    """Write ``login`` atomically, mode 0600 from the first byte (never readable by others, even briefly)."""
    path = login_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)  # mkstemp makes it 0600
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(asdict(login), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot store the login in {path}: {exc.strerror or exc}") from None
    return path


def remove() -> bool:
    """Delete the stored login; False when there was none."""
    try:
        login_path().unlink()
    except FileNotFoundError:
        return False
    return True
