#!/usr/bin/env bash
# Debian packages for the login tests (tests/test_auth.py): LemonLDAP::NG's portal as a real OpenID
# Connect provider, run by the tests under `plackup` (libplack-perl, one of its dependencies), in front
# of which nginx (install-server-deps.sh) gates the COGs with auth_request.
# Installed without recommends, the portal needs a few Perl modules more than its dependencies:
#   IO::String (any issuer), String::Random (the OpenID Connect issuer),
#   GD::SecurityImage with Image::Magick (the captcha plugin, loaded at start even when unused).
# Idempotent: installs only what is missing, runs `apt-get update` only then, and never starts the
# packages' own services (the tests start their own provider on a free port).
set -euo pipefail

packages=(
    liblemonldap-ng-portal-perl
    libio-string-perl
    libstring-random-perl
    libgd-securityimage-perl
    libimage-magick-perl
    openssl
)
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
for pkg in "${packages[@]}"; do
    have_pkg "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi
# shellcheck source=SCRIPTDIR/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
apt_install_quietly install-auth-deps "${missing[@]}"
