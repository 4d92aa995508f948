"""``histcalc login`` / ``histcalc logout``, and the credentials a job reads remote files with.

The password comes from ``TERRASCOPE_PASSWORD`` or a prompt that does not echo, never from the
command line (it would sit in the shell history and in ``ps``). Only the refresh token is kept
(see :mod:`histcalc.login_store`).

A job's ``--auth``: ``stored`` (the login; the default when one exists), ``env`` (a password grant
with ``TERRASCOPE_USERNAME``/``TERRASCOPE_PASSWORD`` for this job only, nothing stored) or ``none``.
With credentials and remote hrefs, :func:`job_credentials` keeps a header file with a fresh token
for the whole job and points GDAL at it (``GDAL_HTTP_HEADER_FILE``, its path only).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from histcalc import gdalenv, login_store
from histcalc.cli_parser import Parser
from histcalc.errors import AccessDenied, CatalogError, LoginExpired, UsageError
from histcalc.oidc import RELOGIN, TERRASCOPE_CLIENT_ID, TERRASCOPE_TOKEN_URL, Provider, Tokens
from histcalc.redact import register_secret
from histcalc.scenes import Query, Scene, is_stac_api

if TYPE_CHECKING:  # both import urllib.request and http.server (~25 ms): only jobs with a login need them
    from histcalc.token_refresh import HeaderFileRefresher

log = logging.getLogger("histcalc")

AUTH_MODES = ("stored", "env", "none")
USERNAME_VARIABLE = "TERRASCOPE_USERNAME"
PASSWORD_VARIABLE = "TERRASCOPE_PASSWORD"
TOKEN_URL_VARIABLE = "HISTCALC_TOKEN_URL"  # --auth env against another provider than Terrascope
CLIENT_ID_VARIABLE = "HISTCALC_CLIENT_ID"
_PROBE_TIMEOUT = 15.0


def run_login(args: Sequence[str]) -> int:
    """``histcalc login``: password grant, then store the refresh token (0600)."""
    from histcalc.cli_logging import configure_logging

    p = Parser(prog="histcalc login", description="Log in to read data served to authenticated users only.")
    p.add_argument("--username", help=f"user name (default: ${USERNAME_VARIABLE}, else asked)")
    p.add_argument("--token-url", default=TERRASCOPE_TOKEN_URL, help="OpenID Connect token endpoint")
    p.add_argument("--client-id", default=TERRASCOPE_CLIENT_ID, help="public client id (default public)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    ns = p.parse_args(args)
    configure_logging(ns.verbose - ns.quiet)
    _check_token_url(ns.token_url)
    username = ns.username or os.environ.get(USERNAME_VARIABLE) or _ask("username: ", echo=True)
    password = os.environ.get(PASSWORD_VARIABLE) or _ask("password: ", echo=False)
    provider = Provider(ns.token_url, ns.client_id)
    tokens = provider.password_grant(username, password)
    if tokens.refresh_token is None:
        raise LoginExpired(f"login provider {provider.where()} gave no refresh token: nothing to store")
    path = login_store.save(login_store.StoredLogin(ns.token_url, ns.client_id, username, tokens.refresh_token))
    print(f"histcalc: logged in as {username} at {provider.where()} (login stored in {path})")
    return 0


def run_logout(args: Sequence[str]) -> int:
    """``histcalc logout``: remove the stored login."""
    p = Parser(prog="histcalc logout", description="Remove the stored login.")
    p.parse_args(args)
    removed = login_store.remove()
    print("histcalc: logged out" if removed else "histcalc: no stored login")
    return 0


def _ask(prompt: str, echo: bool) -> str:
    if not sys.stdin.isatty():
        what = USERNAME_VARIABLE if echo else PASSWORD_VARIABLE
        raise UsageError(f"no terminal to ask on: set {what} (or pass --username)")
    answer = input(prompt) if echo else getpass.getpass(prompt)
    if not answer:
        raise UsageError("an empty " + ("username" if echo else "password"))
    return answer


def _check_token_url(url: str) -> None:
    if not url.startswith(("https://", "http://")):
        raise UsageError(f"--token-url must be an http(s) URL, got {url!r}")


def auth_mode(ns: argparse.Namespace) -> str:
    """``--auth`` checked before any work: ``stored`` needs a login, ``env`` needs both variables."""
    if not getattr(ns, "auth", None):  # implicit: a damaged login only matters once a file needs it
        return "stored" if login_store.login_path().is_file() else "none"
    mode: str = ns.auth
    if mode == "stored" and login_store.load() is None:
        raise LoginExpired(f"--auth stored: no stored login ({login_store.login_path()}): run `histcalc login`")
    if mode == "env" and not (os.environ.get(USERNAME_VARIABLE) and os.environ.get(PASSWORD_VARIABLE)):
        raise UsageError(f"--auth env needs {USERNAME_VARIABLE} and {PASSWORD_VARIABLE} set")
    return mode


def needs_token(href: str) -> bool:
    return href.startswith(("http://", "https://", "/vsicurl/http"))


@contextlib.contextmanager
def job_auth(ns: argparse.Namespace) -> Iterator[JobAuth]:
    """``--auth`` checked now; credentials set up by ``activate`` once the hrefs are known, torn down at the end."""
    mode = auth_mode(ns)
    with contextlib.ExitStack() as stack:
        yield JobAuth(mode, stack, explicit=bool(getattr(ns, "auth", None)))


class JobAuth:
    """The job's credentials: ``activate(hrefs)`` starts the header-file refresher when remote hrefs need it."""

    def __init__(self, mode: str, stack: contextlib.ExitStack, explicit: bool = True) -> None:
        self.mode = mode
        self.explicit = explicit  # --auth given: the token goes to every remote href, not only the provider's site
        self._stack = stack
        self.refresher: HeaderFileRefresher | None = None
        self._first: tuple[Provider, Tokens, Callable[[str], None] | None] | None = None

    def activate(self, hrefs: Sequence[str]) -> HeaderFileRefresher | None:
        if self.mode == "none" or self.refresher is not None:
            return self.refresher
        remote = [h for h in hrefs if needs_token(h) and self._may_send_to(h)]
        if not remote:
            return None
        provider, tokens, on_rotate = self._credentials()
        from histcalc.token_refresh import HeaderFileRefresher

        self.refresher = self._stack.enter_context(HeaderFileRefresher(provider, tokens, on_rotate))
        self._stack.enter_context(_header_file_in_env(self.refresher))
        log.info(
            "reading %d remote file(s) with the %s login, token refreshed while the job runs", len(remote), self.mode
        )
        probe(remote[0], self.refresher)
        return self.refresher

    def find_scenes(self, query: Query, find: Callable[..., list[Scene]]) -> list[Scene]:
        """The selection. A STAC API gets the token when it is on the provider's site, or asks (401/403)."""
        if self.mode == "none" or not is_stac_api(query.catalog):
            return find(query)
        if same_site(query.catalog, _token_url(self.mode)):
            return find(query, self._bearer())
        if not self.explicit:  # an implicit login is for the provider's own site only
            return find(query)
        try:
            return find(query)
        except CatalogError as exc:
            if not re.search(r"\bHTTP 40[13]\b", str(exc)):
                raise
            log.info("the STAC API wants a login: searching again with the %s login's token", self.mode)
            return find(query, self._bearer())

    def _may_send_to(self, href: str) -> bool:
        """Without ``--auth``, the stored login's token goes only to the provider's site (never to third parties)."""
        return self.explicit or same_site(href.removeprefix("/vsicurl/"), _token_url(self.mode))

    def _credentials(self) -> tuple[Provider, Tokens, Callable[[str], None] | None]:
        if self._first is None:
            self._first = _first_tokens(self.mode)
        return self._first

    def _bearer(self) -> dict[str, str]:
        tokens = self.refresher.tokens if self.refresher else self._credentials()[1]
        return {"Authorization": f"Bearer {tokens.access_token}"}

    def gdal_settings(self, engine: str, master: str | None) -> dict[str, str] | None:
        """The job's GDAL settings when credentials are in use (None: compute captures its own).

        The local engine's workers read the driver's header file by path. Spark executors may run on
        other hosts: they get the address and key of a token relay on the driver instead (token_relay).
        """
        if self.refresher is None:
            return None
        settings = gdalenv.capture()
        if engine != "spark":
            return settings
        bind, advertise = _relay_address(master)
        from histcalc.token_relay import TokenRelay

        relay = self._stack.enter_context(TokenRelay(self._current_token, bind, advertise))
        settings.pop("GDAL_HTTP_HEADER_FILE", None)
        log.info("spark executors get fresh tokens from the driver at %s", relay.url)
        return {**settings, **relay.settings()}

    def _current_token(self) -> tuple[str, float]:
        if self.refresher is None:  # the relay starts only after activate made one
            raise RuntimeError("token relay without a refresher")
        tokens = self.refresher.tokens
        return tokens.access_token, max(0.0, tokens.expires_at() - time.monotonic())


def _relay_address(master: str | None) -> tuple[str, str]:
    """Where the relay listens and the name executors reach it by: loopback for a local master."""
    from histcalc.engines.spark import under_spark_submit

    local_ip = os.environ.get("SPARK_LOCAL_IP")
    if local_ip:
        return local_ip, local_ip
    if (master or "").startswith("local") or (master is None and not under_spark_submit()):
        return "127.0.0.1", "127.0.0.1"
    return "0.0.0.0", socket.getfqdn()  # executors elsewhere reach it (key-protected)


def same_site(url: str, other: str) -> bool:
    """Same host, or the same last two labels of a DNS name (stac.terrascope.be and sso.terrascope.be)."""
    a, b = urlsplit(url).hostname or "", urlsplit(other).hostname or ""
    if not a or not b or a.replace(".", "").isdigit() or ":" in a:
        return a == b
    return a.split(".")[-2:] == b.split(".")[-2:]


def _token_url(mode: str) -> str:
    if mode == "env":
        return os.environ.get(TOKEN_URL_VARIABLE, TERRASCOPE_TOKEN_URL)
    login = login_store.load()
    return login.token_url if login else TERRASCOPE_TOKEN_URL


def _first_tokens(mode: str) -> tuple[Provider, Tokens, Callable[[str], None] | None]:
    if mode == "env":
        provider = Provider(_token_url(mode), os.environ.get(CLIENT_ID_VARIABLE, TERRASCOPE_CLIENT_ID))
        password = os.environ.pop(PASSWORD_VARIABLE)  # not inherited by Spark's JVM and Python workers
        tokens = provider.password_grant(os.environ[USERNAME_VARIABLE], password)
        return provider, tokens, None
    login = login_store.load()
    if login is None:
        raise LoginExpired(f"no stored login: {RELOGIN}")
    tokens = login.provider().refresh_grant(login.refresh_token)

    def store_rotated(refresh_token: str) -> None:
        login_store.save(login_store.StoredLogin(login.token_url, login.client_id, login.username, refresh_token))

    if tokens.refresh_token and tokens.refresh_token != login.refresh_token:
        store_rotated(tokens.refresh_token)
    return login.provider(), tokens, store_rotated


@contextlib.contextmanager
def _header_file_in_env(refresher: HeaderFileRefresher) -> Iterator[None]:
    """While the job runs, every GDAL settings capture (driver checks, tasks) uses the live header file.

    Only histcalc's own marker is set, never ``GDAL_HTTP_HEADER_FILE`` itself: processes started now (a
    forkserver serves later jobs too) would otherwise keep pointing GDAL at a file deleted after this job.
    """
    saved = os.environ.get(gdalenv.REFRESHED_HEADER_FILE)
    os.environ[gdalenv.REFRESHED_HEADER_FILE] = str(refresher.path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(gdalenv.REFRESHED_HEADER_FILE, None)
        else:
            os.environ[gdalenv.REFRESHED_HEADER_FILE] = saved


def probe(href: str, refresher: HeaderFileRefresher) -> None:
    """One 1-byte read of ``href`` with the token: a 401/403 is one line now, not every file failing later."""
    import urllib.error
    import urllib.request

    url = href.removeprefix("/vsicurl/")
    token = refresher.tokens.access_token
    register_secret(token)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=_PROBE_TIMEOUT):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            from histcalc.redact import safe_url

            raise AccessDenied(
                f"{safe_url(url)}: HTTP {exc.code} with the login's token "
                f"(no access to this data, or a login for another provider: {RELOGIN} or check --auth)"
            ) from None
    except OSError:
        return  # unreachable data: the job names every file that fails, as without a login
