"""Resource references and the client method chosen for them."""

from __future__ import annotations

import pytest
from kubernetes import client

from libs.kube import ResourceRef
from libs.kube._resources import list_method


def test_names_and_api_versions() -> None:
    vs = ResourceRef("networking.istio.io", "v1", "virtualservices")
    pods = ResourceRef("", "v1", "pods")
    assert (str(vs), vs.api_version) == ("virtualservices.v1.networking.istio.io", "networking.istio.io/v1")
    assert (str(pods), pods.api_version) == ("pods.v1", "v1")


def test_unknown_core_resources_are_refused_up_front() -> None:
    with client.ApiClient(client.Configuration()) as api, pytest.raises(ValueError, match="widgets"):
        list_method(api, ResourceRef("", "v1", "widgets"), None)
