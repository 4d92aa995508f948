"""An OpenID Connect token endpoint: the password grant and the refresh-token grant, nothing more.

Defaults are Terrascope's (its Keycloak realm, public client ``public``); any provider that speaks
RFC 6749 form posts with JSON answers works. Every failure is one of our errors, one line, with
the provider named by its URL without credentials: wrong credentials -> :class:`LoginFailed`, a
refresh token that expired or was revoked -> :class:`LoginExpired`, no answer or no tokens ->
:class:`ProviderUnreachable`. Every token and password seen is registered with :mod:`histcalc.redact`.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from histcalc.errors import LoginExpired, LoginFailed, ProviderUnreachable
from histcalc.redact import register_secret

if TYPE_CHECKING:  # urllib.request imports http.client and ssl (~20 ms): only a login posts
    import urllib.error

log = logging.getLogger(__name__)

TERRASCOPE_TOKEN_URL = "https://sso.terrascope.be/auth/realms/terrascope/protocol/openid-connect/token"
TERRASCOPE_CLIENT_ID = "public"
DEFAULT_TIMEOUT = 15.0  # seconds for one token request
RELOGIN = "run `histcalc login` again"
# What a provider answers for a refresh token it no longer knows: Keycloak says invalid_grant,
# LemonLDAP::NG says invalid_request for an unknown token and invalid_grant for an ended session.
_REFRESH_REFUSED = ("invalid_grant", "invalid_request", "invalid_token", "unauthorized_client")


@dataclass(frozen=True)
class Tokens:
    """One token answer. ``obtained`` is ``time.monotonic()`` when it arrived (for the refresh schedule)."""

    access_token: str = field(repr=False)
    expires_in: float
    refresh_token: str | None = field(repr=False)
    obtained: float

    def expires_at(self) -> float:
        return self.obtained + self.expires_in


@dataclass(frozen=True)
class Provider:
    """A token endpoint and the (public) client id histcalc presents to it."""

    token_url: str = TERRASCOPE_TOKEN_URL
    client_id: str = TERRASCOPE_CLIENT_ID
    timeout: float = DEFAULT_TIMEOUT

    def password_grant(self, username: str, password: str) -> Tokens:
        register_secret(password)
        form = {"grant_type": "password", "username": username, "password": password, "scope": "openid"}
        return self._tokens(form, refresh_token=None)

    def refresh_grant(self, refresh_token: str) -> Tokens:
        """New tokens; an answer without a refresh token keeps ``refresh_token`` (not every provider rotates)."""
        register_secret(refresh_token)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._tokens(form, refresh_token=refresh_token)

    def where(self) -> str:
        from histcalc.redact import safe_url

        return safe_url(self.token_url)

    def _tokens(self, form: dict[str, str], refresh_token: str | None) -> Tokens:
        started = time.monotonic()
        answer = self._post({**form, "client_id": self.client_id}, refreshing=refresh_token is not None)
        access = answer.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderUnreachable(f"login provider {self.where()} answered without an access token")
        rotated = answer.get("refresh_token")
        register_secret(access)
        register_secret(rotated if isinstance(rotated, str) else None)
        return Tokens(
            access_token=access,
            expires_in=_seconds(answer.get("expires_in")),
            refresh_token=rotated if isinstance(rotated, str) and rotated else refresh_token,
            obtained=started,  # the request's start: the token's life is counted from no later than this
        )

    def _post(self, form: dict[str, str], refreshing: bool) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(self.token_url, data=body, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return _json_object(response.read(), self.where())
        except urllib.error.HTTPError as exc:
            raise self._refused(exc, refreshing) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ProviderUnreachable(f"cannot reach the login provider {self.where()}: {reason}") from None

    def _refused(self, exc: urllib.error.HTTPError, refreshing: bool) -> Exception:
        error, description = _oauth_error(exc)
        detail = f" ({error}{': ' + description if description else ''})" if error else ""
        if error and refreshing and error in _REFRESH_REFUSED:
            return LoginExpired(f"the stored login for {self.where()} has expired or was revoked{detail}: {RELOGIN}")
        if error in ("invalid_grant", "unauthorized_client", "invalid_client") and not refreshing:
            return LoginFailed(f"login refused by {self.where()}: wrong username or password{detail}")
        return ProviderUnreachable(f"login provider {self.where()} answered HTTP {exc.code}{detail}")


def _oauth_error(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """``error`` and ``error_description`` of an RFC 6749 error answer ('' when it is not one)."""
    try:
        data = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return "", ""
    if not isinstance(data, dict):
        return "", ""
    return str(data.get("error") or ""), str(data.get("error_description") or "")[:200]


def _json_object(raw: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ProviderUnreachable(f"login provider {where} did not answer with JSON tokens")
    return data


def _seconds(value: Any) -> float:
    """``expires_in`` as seconds; a provider that omits it gets a cautious 60 s."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return 60.0
    return seconds if seconds > 0 else 60.0
