#!/usr/bin/env bash
# Sourced by the install-*.sh scripts: `apt_install_quietly WHO PACKAGE...` installs Debian packages
# without recommends and without letting their own services start (the tests start their own servers on
# free ports). Needs root; runs `apt-get update` first. Not run by `make deps` itself (no install- prefix).

apt_install_quietly() {
    local who=$1
    shift
    if [[ $(id -u) -ne 0 ]]; then
        echo "$who: the tests need $*; install them (needs root)" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d created=0 status=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created=1
    fi
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } || status=$?
    if [[ $created -eq 1 ]]; then rm -f "$policy"; fi
    if [[ $status -ne 0 ]]; then
        echo "$who: apt-get could not install $*" >&2
        return "$status"
    fi
    echo "$who: installed $*"
}
