"""LemonLDAP::NG (Debian's package) as a real OpenID Connect provider, offline, on 127.0.0.1.

It runs the portal's PSGI app under ``plackup`` (as root, with its config, sessions and caches in a
temp dir), with the ``Demo`` user backend (users ``dwho``/``dwho``, ``rtyler``/``rtyler``, ...), and
one public client (``public``) allowed the password and refresh-token grants, with JWT access
tokens that expire after ``token_seconds``. Endpoints: ``/oauth2/token``, ``/oauth2/userinfo``.

Installed by scripts/ci/install-auth-deps.sh.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ._proc import ManagedProcess, ServerStartError, find_executable, free_port, http_ok, remove_workdir, wait_until
from .nginx import NginxServer

PORTAL_PSGI = Path("/usr/share/lemonldap-ng/portal/htdocs/index.psgi")
TEMPLATES = Path("/usr/share/lemonldap-ng/portal/templates")
CLIENT_ID = "public"
USER, PASSWORD = "dwho", "dwho"  # LemonLDAP::NG's Demo backend: the password is the user name
KEYCLOAK_TOKEN_PATH = "/auth/realms/terrascope/protocol/openid-connect/token"  # Terrascope's, as histcalc's default


class LemonLdapServer:
    """``with LemonLdapServer() as idp: idp.token_url`` -> ``http://127.0.0.1:PORT/oauth2/token``."""

    def __init__(self, token_seconds: int = 20) -> None:
        self.token_seconds = token_seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token_url = f"{self.url}/oauth2/token"
        self.userinfo_url = f"{self.url}/oauth2/userinfo"
        self.workdir = Path(tempfile.mkdtemp(prefix="histcalc-llng-"))
        self._proc: ManagedProcess | None = None

    def __enter__(self) -> LemonLdapServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        plackup = find_executable("plackup")
        if plackup is None or not PORTAL_PSGI.is_file():
            raise ServerStartError("LemonLDAP::NG or plackup not found: run scripts/ci/install-auth-deps.sh")
        ini = self._write_config()
        env = {**os.environ, "LLNG_DEFAULTCONFFILE": str(ini)}
        argv = [plackup, "--host", "127.0.0.1", "--port", str(self.port), str(PORTAL_PSGI)]
        self._proc = ManagedProcess(argv, self.workdir / "server.log", env=env, cwd=self.workdir)
        wait_until(self._up, 60, "LemonLDAP::NG", self.workdir / "server.log")

    def _up(self) -> bool:
        assert self._proc is not None
        self._proc.check_alive("LemonLDAP::NG")
        return http_ok(f"{self.url}/.well-known/openid-configuration")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        remove_workdir(self.workdir)

    def revoke_all(self) -> None:
        """End every SSO session and refresh token (what an admin's "log out everywhere" does)."""
        for kind in ("sessions", "psessions"):
            for path in (self.workdir / kind).iterdir():
                if path.is_file():
                    path.unlink()
        shutil.rmtree(self.workdir / "cache", ignore_errors=True)  # the portal's local session cache

    def _write_config(self) -> Path:
        for kind in ("conf", "sessions/lock", "psessions/lock", "cache", "notifications"):
            (self.workdir / kind).mkdir(parents=True, exist_ok=True)
        (self.workdir / "conf" / "lmConf-1.json").write_text(json.dumps(self._conf(), indent=1))
        ini = self.workdir / "lemonldap-ng.ini"
        ini.write_text(
            f"[all]\nlogLevel = {os.environ.get('LLNG_LOGLEVEL', 'warn')}\ncheckTime = 1\n"
            f"[configuration]\ntype = File\ndirName = {self.workdir / 'conf'}\n"
            f"[portal]\nstaticPrefix = /static\ntemplateDir = {TEMPLATES}\nlanguages = en\n"
        )
        return ini

    def _conf(self) -> dict[str, Any]:
        private, public = _rsa_keys(self.workdir)

        def storage(kind: str) -> dict[str, str]:
            return {"Directory": str(self.workdir / kind), "LockDirectory": str(self.workdir / kind / "lock")}

        cache = {"cache_root": str(self.workdir / "cache"), "cache_depth": 3, "default_expires_in": 600}
        return {
            "cfgNum": 1,
            "cfgAuthor": "histcalc tests",
            "cfgDate": str(int(time.time())),
            "cfgVersion": "2.16.1",
            "authentication": "Demo",
            "userDB": "Same",
            "passwordDB": "Demo",
            "demoExportedVars": {"cn": "cn", "mail": "mail", "uid": "uid"},
            "exportedVars": {},
            "macros": {},
            "groups": {},
            "whatToTrace": "uid",
            "domain": "127.0.0.1",
            "cookieName": "lemonldap",
            "securedCookie": 0,
            "portal": f"{self.url}/",
            "timeout": 72000,
            "globalStorage": "Apache::Session::File",
            "globalStorageOptions": storage("sessions"),
            "persistentStorage": "Apache::Session::File",
            "persistentStorageOptions": storage("psessions"),
            "localSessionStorage": "Cache::FileCache",
            "localSessionStorageOptions": {**cache, "namespace": "lemonldap-ng-sessions"},
            "notification": 0,
            "captcha_mail_enabled": 0,  # the captcha plugin needs ImageMagick's Perl module
            "captcha_register_enabled": 0,
            "loginHistoryEnabled": 0,
            "locationRules": {},
            "issuerDBOpenIDConnectActivation": 1,
            "oidcServiceMetaDataIssuer": self.url,
            "oidcServicePrivateKeySig": private,
            "oidcServicePublicKeySig": public,
            "oidcServiceKeyIdSig": "histcalc-test",
            "oidcServiceIgnoreScopeForClaims": 1,
            "oidcRPMetaDataOptions": {"histcalc": self._client()},
            "oidcRPMetaDataExportedVars": {"histcalc": {"email": "mail", "name": "cn", "preferred_username": "uid"}},
        }

    def _client(self) -> dict[str, Any]:
        return {
            "oidcRPMetaDataOptionsClientID": CLIENT_ID,
            "oidcRPMetaDataOptionsPublic": 1,
            "oidcRPMetaDataOptionsAllowPasswordGrant": 1,
            "oidcRPMetaDataOptionsRefreshToken": 1,
            "oidcRPMetaDataOptionsAccessTokenJWT": 1,
            "oidcRPMetaDataOptionsAccessTokenExpiration": self.token_seconds,
            "oidcRPMetaDataOptionsIDTokenSignAlg": "RS256",
            "oidcRPMetaDataOptionsAccessTokenSignAlg": "RS256",
            "oidcRPMetaDataOptionsBypassConsent": 1,
            "oidcRPMetaDataOptionsRedirectUris": "http://127.0.0.1/callback",
        }


def _rsa_keys(workdir: Path) -> tuple[str, str]:
    """A fresh RSA key pair (PEM) made with Debian's openssl, for signing the provider's JWTs."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServerStartError("openssl not found")
    key = workdir / "sig.key"
    subprocess.run([openssl, "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run([openssl, "rsa", "-in", str(key), "-pubout"], check=True, capture_output=True, text=True)
    private = key.read_text()
    key.unlink()
    return private, public.stdout


class GatedNginx(NginxServer):
    """nginx serving ``root`` at ``/protected/`` to holders of a valid access token only.

    Every request is checked with ``auth_request`` against the provider's userinfo endpoint (an
    expired or unknown token: 401). ``/protected-slow/`` is the same, sending at ``slow_rate`` bytes/s
    per connection, so a small job reads for as long as a test needs. The provider's token endpoint is
    also served under Terrascope's Keycloak path (``token_url``), so histcalc's default path is used.
    With ``upstream``, every other path is proxied there behind the same gate.
    """

    def __init__(self, root: Path, idp: LemonLdapServer, slow_rate: str = "2k", upstream: str | None = None) -> None:
        super().__init__(root)
        self.idp = idp
        self.slow_rate = slow_rate
        self.upstream = upstream  # gate every other path too, proxied here (a STAC API that wants a login)
        self.token_url = f"{self.url}{KEYCLOAK_TOKEN_PATH}"

    def _extra_locations(self) -> str:
        gate = "auth_request /_userinfo;"
        return f"""
        location = {KEYCLOAK_TOKEN_PATH} {{ proxy_pass {self.idp.token_url}; }}
        location = /_userinfo {{
            internal;
            proxy_pass {self.idp.userinfo_url};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /protected/ {{ {gate} alias {self.root}/; }}
        location /protected-slow/ {{ {gate} alias {self.root}/; limit_rate {self.slow_rate}; }}
{self._upstream(gate)}"""

    def _upstream(self, gate: str) -> str:
        if self.upstream is None:
            return ""
        return f"""        location / {{ {gate} proxy_pass {self.upstream}; proxy_set_header Host $http_host; }}
"""
