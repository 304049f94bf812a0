#!/bin/sh
# The image's entrypoint: `python -m MODULE ARGS...`, so every service is one `command:`
# away (`services.pilot --xds-port 15010`, `tools.mizzenctl get virtualservices`).
#
# docker-compose has no downward API, so the container's own address is not known when
# the command is written.  As Kubernetes expands `$(VAR)` in a container's arguments,
# this expands `$(POD_IP)` in every argument to the container's address (the first one
# `hostname -i` names; in a compose file write it `$$(POD_IP)`).  POD_IP, when set,
# wins.
set -eu

if [ "$#" -eq 0 ]; then
    echo "usage: MODULE [ARGS...]  (run as python -m MODULE, e.g. services.pilot --help)" >&2
    exit 2
fi

case "$*" in
*'$(POD_IP)'*)
    if [ -z "${POD_IP:-}" ]; then
        POD_IP=$(hostname -i 2>/dev/null | cut -d ' ' -f 1)
    fi
    if [ -z "$POD_IP" ]; then
        echo "mizzen-entrypoint: cannot tell this container's address for \$(POD_IP) (hostname -i)" >&2
        exit 1
    fi
    export POD_IP
    for arg do
        shift
        while :; do
            case "$arg" in
            *'$(POD_IP)'*) arg="${arg%%\$(POD_IP)*}${POD_IP}${arg#*\$(POD_IP)}" ;;
            *) break ;;
            esac
        done
        set -- "$@" "$arg"
    done
    ;;
esac

exec python -m "$@"
