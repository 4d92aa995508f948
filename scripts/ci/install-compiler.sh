#!/usr/bin/env bash
# A C compiler for histcalc's counting kernels (src/histcalc/_native_*.c, compiled by hatch_build.py when
# the package is installed or built). Idempotent: does nothing when `cc` (or $CC) is there; installs
# Debian's gcc otherwise (needs root). Without one, histcalc still works and counts with numba or numpy.
set -euo pipefail
# shellcheck source=SCRIPTDIR/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt-install.sh"
compiler=${CC:-cc}
if command -v "${compiler%% *}" >/dev/null 2>&1; then  # $CC may carry flags ("gcc -pthread")
    exit 0
fi
apt_install_quietly install-compiler gcc libc6-dev
