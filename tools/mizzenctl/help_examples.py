"""Every command's `--help` ends with examples, as istioctl's do: this table holds them by
command path, and `decorate` hangs them on the argparse tree once it is built (a command
that brings its own epilog keeps it).  The help formatter wraps prose but keeps indented
lines (the examples) as written.
"""

from __future__ import annotations

import argparse
import textwrap

__all__ = ["EXAMPLES", "HelpFormatter", "decorate", "parsers"]

EXAMPLES: dict[str, str] = {
    "": """\
# Run the local mesh in the background, then look at its proxies
mizzenctl up -d
mizzenctl proxy-status
# Shell completion for this shell
source <(mizzenctl completion bash)""",
    "demo": "mizzenctl demo",
    "up": """\
# Bookinfo on a local mesh, in the foreground (Ctrl-C stops it)
mizzenctl up
# In the background, in 127.5.0.0/16, its state under ~/meshes/demo
mizzenctl up -d --subnet 5 --state-dir ~/meshes/demo""",
    "dashboard": "mizzenctl dashboard --no-browser",
    "down": "mizzenctl down --state-dir ~/meshes/demo",
    "status": "mizzenctl status",
    "context": """\
mizzenctl context
mizzenctl context use demo""",
    "context list": "mizzenctl context list",
    "context use": "mizzenctl context use demo",
    "context add": """\
# A mesh mizzenctl did not start (docker compose, Kubernetes)
mizzenctl context add compose --galley http://127.0.0.1:15019 --pilot http://127.0.0.1:15014 \\
    --token-file ./galley-token --use""",
    "context delete": "mizzenctl context delete demo",
    "validate": """\
mizzenctl validate -f samples/bookinfo/networking/
kubectl get virtualservices -A -o yaml | mizzenctl validate -f -""",
    "analyze": """\
mizzenctl analyze -A
mizzenctl analyze -f samples/bookinfo/networking/virtual-service-all-v1.yaml""",
    "kube-inject": """\
mizzenctl kube-inject -f deployment.yaml | kubectl apply -f -""",
    "apply": """\
mizzenctl apply -f samples/bookinfo/networking/destination-rule-all.yaml
# Store nothing: validate, and show what each proxy's Envoy config would become
mizzenctl apply --dry-run -f samples/bookinfo/networking/virtual-service-reviews-v3.yaml
# Apply what Mizzen serves from a file that also holds kinds it does not (e.g. EnvoyFilter)
mizzenctl apply --skip-unsupported -f istio-config.yaml""",
    "delete": """\
mizzenctl delete -f samples/bookinfo/networking/virtual-service-all-v1.yaml
# Delete nothing: say what would be deleted, and what each proxy's Envoy config would become
mizzenctl delete --dry-run -f samples/bookinfo/networking/virtual-service-all-v1.yaml""",
    "get": """\
mizzenctl get virtualservices
mizzenctl get dr reviews -o yaml
mizzenctl get authorizationpolicies -A""",
    "proxy-status": """\
mizzenctl proxy-status
# One proxy, type by type; with -v Envoy's reasons for rejected config
mizzenctl proxy-status productpage-v1.default -v""",
    "proxy-config": """\
mizzenctl proxy-config routes productpage-v1.default
mizzenctl proxy-config secret productpage-v1.default
mizzenctl proxy-config log productpage-v1.default --level http:debug""",
    "proxy-config clusters": """\
mizzenctl proxy-config clusters productpage-v1.default --fqdn reviews
# As Envoy holds them, from its admin
mizzenctl proxy-config clusters --admin 127.0.10.1:15000""",
    "proxy-config listeners": "mizzenctl proxy-config listeners reviews-v1.default --port 9080",
    "proxy-config routes": "mizzenctl proxy-config routes istio-ingressgateway.istio-system --name http.8080 -o json",
    "proxy-config endpoints": "mizzenctl proxy-config endpoints productpage-v1.default --cluster "
                              "'outbound|9080||reviews.default.svc.cluster.local'",
    "proxy-config secret": """\
# The workload certificate and the roots the proxy holds, with SPIFFE IDs and validity
mizzenctl proxy-config secret productpage-v1.default
mizzenctl proxy-config secret productpage-v1.default -o json""",
    "proxy-config bootstrap": """\
mizzenctl proxy-config bootstrap productpage-v1.default
# The Mizzen and Envoy versions only
mizzenctl proxy-config bootstrap productpage-v1.default -o short""",
    "proxy-config log": """\
mizzenctl proxy-config log productpage-v1.default
# Every logger at debug, or only some
mizzenctl proxy-config log productpage-v1.default --level debug
mizzenctl proxy-config log productpage-v1.default --level http:debug,router:info
# Back to the agent's default (warning)
mizzenctl proxy-config log productpage-v1.default -r""",
    "proxy-config all": """\
mizzenctl proxy-config all productpage-v1.default
mizzenctl proxy-config all productpage-v1.default -o json > productpage-config.json""",
    "version": """\
mizzenctl version
mizzenctl version -o yaml
mizzenctl version --no-remote""",
    "bug-report": """\
mizzenctl bug-report
mizzenctl bug-report --output /tmp/mesh-report.tar.gz --max-log-bytes 500000""",
    "completion": """\
# bash, this shell
source <(mizzenctl completion bash)
# zsh, every new shell
mizzenctl completion zsh > "${fpath[1]}/_mizzenctl\"""",
    "x": "mizzenctl x describe pod productpage-v1",
    "x authz": "mizzenctl x authz check reviews-v1.default",
    "x authz check": """\
mizzenctl x authz check reviews-v1.default
mizzenctl x authz check --admin 127.0.10.3:15000 -o json""",
    "x ca": "mizzenctl x ca status",
    "x ca status": """\
mizzenctl x ca status
mizzenctl x ca status -o json""",
    "x ca rotate": """\
# A new root beside the old one, workloads moved to it, the old one dropped; follow it to the end
mizzenctl x ca rotate --wait
# On Kubernetes, through a port-forward to citadel (it takes a rotation from its own host only)
kubectl -n istio-system port-forward deploy/istio-citadel 9093 &
mizzenctl x ca rotate --citadel http://127.0.0.1:9093""",
    "x describe": """\
mizzenctl x describe pod productpage-v1
mizzenctl x describe service reviews""",
    "x describe pod": """\
mizzenctl x describe pod productpage-v1
mizzenctl x describe pod istio-ingressgateway -n istio-system""",
    "x describe service": """\
mizzenctl x describe service reviews
mizzenctl x describe svc reviews.default""",
}


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, but indented lines in a description or epilog (examples,
    commands to type) are kept as written; prose is wrapped as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines[1:]) or (lines and lines[0].endswith(":")):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent,
                                                subsequent_indent=indent))
        return "\n\n".join(paragraphs)


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, argparse.ArgumentParser]]:
    """(command path, parser) for the root and every subcommand (each once, not per alias)."""
    found = [(" ".join(path), parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.extend(parsers(sub, (*path, name)))
    return found


def epilog(example: str) -> str:
    return "examples:\n" + textwrap.indent(example, "  ")


def decorate(root: argparse.ArgumentParser) -> None:
    """Give every command without an epilog its examples, and the formatter that keeps them."""
    for path, parser in parsers(root):
        if parser.epilog is None and path in EXAMPLES:
            parser.epilog = epilog(EXAMPLES[path])
        if parser.formatter_class is argparse.HelpFormatter:
            parser.formatter_class = HelpFormatter
