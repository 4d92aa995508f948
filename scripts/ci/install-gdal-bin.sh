#!/usr/bin/env bash
# Debian's gdal-bin: the zonal tests write their vector files with GDAL's own ogr2ogr as well as with pyogrio,
# so a file written by the reference tool is read back (tests/test_zones.py). Idempotent.
set -euo pipefail

if command -v ogr2ogr >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-gdal-bin: the zonal tests need ogr2ogr (Debian gdal-bin); install it (needs root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gdal-bin >/dev/null
echo "install-gdal-bin: installed gdal-bin"
