#!/usr/bin/env bash
# Debian packages for the integration-test servers (tests/servers/): nginx (HTTP with range
# requests) and PostgreSQL + PostGIS (the database behind the STAC API, stac-fastapi-pgstac).
# The S3 server (moto) and the STAC API itself are PyPI packages: tests/servers/requirements.txt.
# Idempotent: installs only what is missing, and never starts the packages' system services.
set -euo pipefail

missing=()
have_nginx() { command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]]; }
have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; }
have_postgis() { compgen -G "/usr/share/postgresql/*/extension/postgis.control" >/dev/null; }

have_nginx || missing+=(nginx)
if ! have_postgres || ! have_postgis; then
    missing+=(postgresql postgresql-postgis)  # Debian's virtual package for the default major version
fi
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-server-deps: the server tests need ${missing[*]}; install them (needs root)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Keep the packages' own services (port 80, port 5432) from starting: the tests start their own.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi; }
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-server-deps: installed ${missing[*]}"
