"""A measurement, named and typed as Ceilometer names them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class SampleType(StrEnum):
    GAUGE = "gauge"
    CUMULATIVE = "cumulative"
    DELTA = "delta"


class EntityKind(StrEnum):
    HOST = "host"
    INSTANCE = "instance"
    VOLUME = "volume"


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one meter for one entity at one time (seconds)."""

    meter: str
    entity: str
    value: float
    unit: str
    type: SampleType
    time: float
    kind: EntityKind = EntityKind.INSTANCE
    host: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


# A sample as a plain tuple, in Sample's field order (`Sample(*row)` makes it):
# ten times cheaper to make than the object, the form hot paths use.
SampleRow = tuple[str, str, float, str, SampleType, float, EntityKind, str, Mapping[str, str]]
