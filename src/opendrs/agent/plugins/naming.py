"""Dotted metric paths for line protocols (statsd, Graphite):
`<prefix>.<kind>.<entity>.<meter>[.<device or interface>]`, with every part made
safe for a path (no dots, blanks or protocol characters inside a part)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter

from opendrs.bus.codec import SampleRow
from opendrs.domain.sample import EntityKind, Sample

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")
_SERIES_LABELS = ("device", "interface")
_PATHS_KEPT = 200_000
# What a row's path depends on (meter, entity, kind and labels), and its type,
# which decides the line a protocol writes of it.
_SHAPE = (itemgetter(0), itemgetter(1), itemgetter(4), itemgetter(6), itemgetter(8))
# A poll's shape: those five columns (lists compare fast when they hold the
# very same objects, as the agent's rows of a steady host do).
_Shape = tuple[list[object], ...]


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
        self._layout: PollLayout | None = None

    def layout(self, rows: Sequence[SampleRow]) -> PollLayout:
        """The paths of `rows`, as one object that stays the same (the very same)
        from poll to poll while the rows' series and their order do not change:
        a plugin keeps what it derives from the paths on it."""
        shape = _shape_of(rows)
        last = self._layout
        if last is not None and (last.shape is shape or last.shape == shape):
            return last
        layout = self._layout = PollLayout(shape, self.paths_of(rows))
        return layout

    def path(self, sample: Sample) -> str:
        return self._path(sample.kind, sample.entity, sample.meter, sample.labels)

    def paths_of(self, rows: Iterable[SampleRow]) -> list[str]:
        """The path of every row, in order; remembered (bounded) for the next poll."""
        cache = self._paths
        out: list[str] = []
        append = out.append
        for row in rows:
            labels = row[8]
            key = (row[1], row[0], id(labels))
            found = cache.get(key)
            if found is None or found[0] is not labels or found[1] is not row[6]:
                if len(cache) >= _PATHS_KEPT:
                    cache.clear()
                found = cache[key] = (labels, row[6], self._path(row[6], row[1], row[0], labels))
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


# The last poll's rows and their shape: the plugins of one poll (statsd, Graphite)
# are handed the same rows object, and work its shape out once between them.
_last_shape: tuple[Sequence[SampleRow], _Shape] | None = None


def _shape_of(rows: Sequence[SampleRow]) -> _Shape:
    global _last_shape
    found = _last_shape  # one read: another thread may replace it meanwhile
    if found is not None and found[0] is rows and len(found[1][0]) == len(rows):
        return found[1]
    shape = tuple([list(map(column, rows)) for column in _SHAPE])
    _last_shape = (rows, shape)
    return shape


class PollLayout:
    """The series of one poll's rows in order (`shape`) and their `paths`."""

    __slots__ = ("paths", "shape")

    def __init__(self, shape: _Shape, paths: list[str]) -> None:
        self.shape = shape
        self.paths = paths
