"""Choosing which served version of a group to watch."""

from __future__ import annotations

from libs.kube import ApiGroup, choose_version, version_priority
from libs.kube._discovery import parse_group_list

ISTIO = ("v1alpha3", "v1beta1", "v1")


def test_kubernetes_version_order() -> None:
    shuffled = ["v1alpha1", "foo", "v1beta1", "v2", "v1", "v1beta2", "v10alpha1", "bar"]
    assert sorted(shuffled, key=version_priority) == [
        "v2", "v1", "v1beta2", "v1beta1", "v10alpha1", "v1alpha1", "bar", "foo"]


def test_the_preferred_version_wins_when_supported() -> None:
    assert choose_version(ISTIO, ApiGroup("networking.istio.io", ("v1", "v1beta1", "v1alpha3"), "v1")) == "v1"


def test_an_older_istio_falls_back_to_the_best_served_version() -> None:
    assert choose_version(ISTIO, ApiGroup("networking.istio.io", ("v1beta1", "v1alpha3"), "v1beta1")) == "v1beta1"
    assert choose_version(ISTIO, ApiGroup("networking.istio.io", ("v1alpha3",), "v1alpha3")) == "v1alpha3"


def test_a_preferred_version_we_cannot_read_is_skipped() -> None:
    assert choose_version(ISTIO, ApiGroup("networking.istio.io", ("v2", "v1alpha3"), "v2")) == "v1alpha3"


def test_nothing_to_watch_when_the_group_is_not_served() -> None:
    assert choose_version(ISTIO, None) is None
    assert choose_version(ISTIO, ApiGroup("networking.istio.io", ("v2",), "v2")) is None


def test_parse_group_list() -> None:
    body = {"kind": "APIGroupList", "groups": [
        {"name": "networking.istio.io",
         "versions": [{"groupVersion": "networking.istio.io/v1", "version": "v1"},
                      {"groupVersion": "networking.istio.io/v1alpha3", "version": "v1alpha3"}],
         "preferredVersion": {"groupVersion": "networking.istio.io/v1", "version": "v1"}},
        {"name": "no.preference", "versions": [{"version": "v1alpha1"}, {"version": "v1beta1"}]},
        {"versions": []},
    ]}
    assert parse_group_list(body) == {
        "networking.istio.io": ApiGroup("networking.istio.io", ("v1", "v1alpha3"), "v1"),
        "no.preference": ApiGroup("no.preference", ("v1alpha1", "v1beta1"), "v1beta1"),
    }
