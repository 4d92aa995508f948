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
# shellcheck source=SCRIPTDIR/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install_quietly install-server-deps "${missing[@]}"
