#!/usr/bin/env bash
# Java 17 for Spark (the core tests start a real Spark session). Idempotent: does nothing when
# a java binary is already there; installs Debian's headless JRE otherwise (needs root).
set -euo pipefail
if command -v java >/dev/null 2>&1 || [[ -x "${JAVA_HOME:-/nonexistent}/bin/java" ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-java: Spark needs Java 17; install openjdk-17-jre-headless (needs root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless
