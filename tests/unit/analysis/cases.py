"""Analyzer tests run on YAML as a user writes it: Istio config, and Kubernetes manifests
for the platform (Services, Deployments), read the way `mizzenctl analyze -f` reads them."""

from __future__ import annotations

from libs.analysis import Analyzer, Inputs, Platform, analyze
from libs.analysis.files import read_files

# Bookinfo's reviews (v1, v2) and ratings, and an ingress gateway behind a Service that
# maps port 80 to the pods' 8080, as Kubernetes would hold them.
PLATFORM = """\
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: default}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: default}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, namespace: default}
spec:
  template:
    metadata: {labels: {app: reviews, version: v1}}
    spec: {serviceAccountName: bookinfo-reviews}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v2, namespace: default}
spec:
  template:
    metadata: {labels: {app: reviews, version: v2}}
    spec: {serviceAccountName: bookinfo-reviews}
---
apiVersion: v1
kind: Pod
metadata: {name: ratings-v1, namespace: default, labels: {app: ratings, version: v1}}
spec: {serviceAccountName: bookinfo-ratings}
---
apiVersion: v1
kind: Service
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  ports: [{name: http2, port: 80, targetPort: 8080}, {name: https, port: 443, targetPort: 8443}]
---
apiVersion: v1
kind: Pod
metadata: {name: istio-ingressgateway-1, namespace: istio-system, labels: {istio: ingressgateway}}
spec: {serviceAccountName: istio-ingressgateway-service-account}
"""


def messages(config: str, *, analyzer: Analyzer | None = None, platform: str | None = PLATFORM,
             known: bool = True) -> list[str]:
    """istioctl's lines for `config` over `platform` (manifests; None: an empty platform, or
    with `known` false, an unknown one), from one analyzer or all."""
    read = read_files([("config.yaml", config.encode())])
    assert not read.errors, read.errors
    given = read_files([("platform.yaml", platform.encode())]).platform if platform else Platform()
    inputs = Inputs(read.resources, given if known else None, read.origins, read.invalid)
    found = analyze(inputs, [analyzer]) if analyzer is not None else analyze(inputs)
    return [str(m) for m in found]
