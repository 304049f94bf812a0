"""An immutable view of `mesh-config` at one KV revision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from libs.config import Resource


@dataclass(frozen=True)
class ConfigSnapshot:
    revision: int
    resources: Mapping[str, Resource]
    _by_kind: dict[str, list[Resource]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_kind: dict[str, list[Resource]] = {}
        # Sorted by (namespace, name) so translation is deterministic; Istio orders
        # by creation time, which files do not have.
        for key in sorted(self.resources):
            resource = self.resources[key]
            by_kind.setdefault(resource.kind, []).append(resource)
        object.__setattr__(self, "_by_kind", by_kind)

    def of_kind(self, kind: str) -> list[Resource]:
        return self._by_kind.get(kind, [])

    def kinds_changed(self, other: ConfigSnapshot) -> set[str]:
        """The kinds of the resources that differ between this config and `other` (added,
        removed or changed).  An unchanged resource is the same object in both (the config
        watch decodes each entry once), so only changed ones are compared by value."""
        kinds: set[str] = set()
        mine, theirs = self.resources, other.resources
        for key in mine.keys() | theirs.keys():
            a, b = mine.get(key), theirs.get(key)
            if a is not b and a != b:
                kinds.add((a or b).kind)  # type: ignore[union-attr]
        return kinds

    def overlaid(self, resources: Iterable[Resource]) -> ConfigSnapshot:
        """This config with `resources` applied over it, at the same revision: each replaces
        the one with its kind, namespace and name (its mesh-config key), as an apply through
        galley would; the last of several with one key wins.  Nothing is changed in place."""
        return ConfigSnapshot(self.revision, {**self.resources, **{r.key: r for r in resources}})

    def without(self, keys: Iterable[str]) -> ConfigSnapshot:
        """This config with the resources of `keys` (mesh-config keys) deleted, at the same
        revision, as a delete through galley would leave it.  Nothing is changed in place."""
        gone = set(keys)
        return ConfigSnapshot(self.revision, {k: r for k, r in self.resources.items() if k not in gone})


EMPTY_CONFIG = ConfigSnapshot(0, {})
