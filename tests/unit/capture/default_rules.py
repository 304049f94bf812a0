"""The exact rules the local mesh installed before the capture settings grew: the default
output must not change (tests/e2e/local/test_iptables_capture.py runs them for real)."""

DEFAULT = """\
-t nat -N ISTIO_INBOUND
-t nat -N ISTIO_REDIRECT
-t nat -N ISTIO_IN_REDIRECT
-t nat -N ISTIO_OUTPUT
-t nat -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-t nat -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-t nat -A PREROUTING -p tcp -j ISTIO_INBOUND
-t nat -A ISTIO_INBOUND -p tcp --dport 15000 -j RETURN
-t nat -A ISTIO_INBOUND -p tcp --dport 15020 -j RETURN
-t nat -A ISTIO_INBOUND -p tcp --dport 15021 -j RETURN
-t nat -A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN
-t nat -A ISTIO_INBOUND -p tcp --dport 22 -j RETURN
-t nat -A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-t nat -A OUTPUT -p tcp -j ISTIO_OUTPUT
-t nat -A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-t nat -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-t nat -A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-t nat -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-t nat -A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-t nat -A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-t nat -A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-t nat -A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-t nat -A ISTIO_OUTPUT -j ISTIO_REDIRECT
"""
