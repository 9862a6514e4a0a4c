"""Dotted metric paths for line protocols (statsd, Graphite):
`<prefix>.<kind>.<entity>.<meter>[.<device or interface>]`, with every part made
safe for a path (no dots, blanks or protocol characters inside a part)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from opendrs.domain.sample import EntityKind, Sample

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_SERIES_LABELS = ("device", "interface")
_PATHS_KEPT = 200_000


def safe_part(text: str) -> str:
    """One path component: anything but letters, digits, `_` and `-` becomes `_`."""
    return _UNSAFE.sub("_", text) or "_"


def safe_prefix(prefix: str) -> str:
    """A configured prefix: dots separate components, each made safe."""
    return ".".join(safe_part(p) for p in prefix.split(".") if p)


class PathNamer:
    """Paths of samples, remembering each entity's and device's safe form
    (the same few names come back every poll)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = safe_prefix(prefix)
        self._parts: dict[str, str] = {}
        self._paths: dict[tuple[EntityKind, str, str, str | None, str | None], str] = {}

    def path(self, sample: Sample) -> str:
        return self._path(sample.kind, sample.entity, sample.meter, sample.labels)

    @property
    def paths(self) -> dict[tuple[EntityKind, str, str, str | None, str | None], str]:
        """The remembered paths by `key_of`: a hot loop may look them up itself."""
        return self._paths

    def path_of(self, kind: EntityKind, entity: str, meter: str, labels: Mapping[str, str]) -> str:
        """As `path`, from a sample's fields; remembered (bounded) for the next poll."""
        if labels:
            key = (kind, entity, meter, labels.get("device"), labels.get("interface"))
        else:
            key = (kind, entity, meter, None, None)
        paths = self._paths
        found = paths.get(key)
        if found is None:
            if len(paths) >= _PATHS_KEPT:
                paths.clear()
            found = paths[key] = self._path(kind, entity, meter, labels)
        return found

    def _path(self, kind: EntityKind, entity: str, meter: str, labels: Mapping[str, str]) -> str:
        parts = self._parts
        safe = parts.get(entity)
        if safe is None:
            safe = parts[entity] = safe_part(entity)
        head = f"{self.prefix}.{kind.value}.{safe}.{meter}"
        if labels:
            for key in _SERIES_LABELS:
                value = labels.get(key)
                if value is not None:
                    part = parts.get(value)
                    if part is None:
                        part = parts[value] = safe_part(value)
                    head = f"{head}.{part}"
        return head
