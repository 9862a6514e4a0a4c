"""Dotted metric paths for line protocols (statsd, Graphite):
`<prefix>.<kind>.<entity>.<meter>[.<device or interface>]`, with every part made
safe for a path (no dots, blanks or protocol characters inside a part)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from opendrs.agent.batch import ColumnLayout
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
        # (entity, meter, id of the labels) -> (those labels, kind, path). The entry
        # holds the labels object, so its id cannot be reused while it is here;
        # the agent keeps one labels object per device from poll to poll.
        self._paths: dict[tuple[str, str, int], tuple[Mapping[str, str], EntityKind, str]] = {}

    def path(self, sample: Sample) -> str:
        return self._path(sample.kind, sample.entity, sample.meter, sample.labels)

    def paths_of(self, layout: ColumnLayout, rows: Sequence[int] | None = None) -> list[str]:
        """The path of every row of `layout` (or of the `rows` given), in order."""
        columns: Iterable[tuple[EntityKind, str, str, Mapping[str, str]]] = zip(
            layout.kinds, layout.entities, layout.meters, layout.labels, strict=True
        )
        if rows is not None:
            picked = list(columns)
            columns = [picked[at] for at in rows]
        cache = self._paths
        out: list[str] = []
        append = out.append
        for kind, entity, meter, labels in columns:
            key = (entity, meter, id(labels))
            found = cache.get(key)
            if found is None or found[0] is not labels or found[1] is not kind:
                if len(cache) >= _PATHS_KEPT:
                    cache.clear()
                found = cache[key] = (labels, kind, self._path(kind, entity, meter, labels))
            append(found[2])
        return out

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
