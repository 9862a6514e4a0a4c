"""Dotted metric paths for line protocols (statsd, Graphite):
`<prefix>.<kind>.<entity>.<meter>[.<device or interface>]`, with every part made
safe for a path (no dots, blanks or protocol characters inside a part)."""

from __future__ import annotations

import re

from opendrs.domain.sample import Sample

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_SERIES_LABELS = ("device", "interface")


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

    def path(self, sample: Sample) -> str:
        parts = self._parts
        entity = parts.get(sample.entity)
        if entity is None:
            entity = parts[sample.entity] = safe_part(sample.entity)
        head = f"{self.prefix}.{sample.kind.value}.{entity}.{sample.meter}"
        labels = sample.labels
        if labels:
            for key in _SERIES_LABELS:
                value = labels.get(key)
                if value is not None:
                    part = parts.get(value)
                    if part is None:
                        part = parts[value] = safe_part(value)
                    head = f"{head}.{part}"
        return head
