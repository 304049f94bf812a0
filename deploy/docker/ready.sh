#!/bin/bash
# mizzen-ready [HOST:]PORT [PATH] [BODY]: exit 0 when http://HOST:PORT/PATH (HOST defaults
# to 127.0.0.1, PATH to /readyz) answers 200 and, with BODY, its body holds BODY.  For
# compose healthchecks: bash's /dev/tcp, so a check costs no Python start-up on a machine
# running twenty containers.  HTTP/1.1, since Envoy refuses 1.0.
set -euo pipefail
target=${1:?usage: mizzen-ready [HOST:]PORT [PATH] [BODY]}
path=${2:-/readyz}
body=${3:-}
host=127.0.0.1
port=$target
if [[ $target == *:* ]]; then
    host=${target%:*}
    port=${target##*:}
fi
exec 3<>"/dev/tcp/${host}/${port}"
printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
response=$(timeout 3 cat <&3)
exec 3<&-
status=${response%%$'\r'*}
[[ $status == "HTTP/"*" 200 "* ]] || { echo "$path on $host:$port: ${status:-no answer}" >&2; exit 1; }
[[ -z $body || $response == *"$body"* ]] || { echo "$path on $host:$port: no $body in the body" >&2; exit 1; }
