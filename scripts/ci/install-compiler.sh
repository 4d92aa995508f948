#!/usr/bin/env bash
# A C compiler for histcalc's counting kernels (src/histcalc/_native_*.c, compiled by hatch_build.py when
# the package is installed or built). Idempotent: does nothing when `cc` (or $CC) is there; installs
# Debian's gcc otherwise (needs root). Without one, histcalc still works and counts with numba.
set -euo pipefail
if command -v "${CC:-cc}" >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-compiler: no C compiler (cc); install gcc to build histcalc's C kernels (needs root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc libc6-dev
