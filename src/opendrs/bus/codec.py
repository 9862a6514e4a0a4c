"""CloudEvents 1.0 structured JSON envelopes for domain events, with our schema
version; anything that does not decode is an InvalidInput naming the problem.

Sample batches travel column by column (`data.columns`: one list per Sample
field, a single value for a field every sample shares; labels as a table of
distinct maps and each sample's `label` index in it); the older form, one object
per sample in `data.samples`, still decodes."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain
from typing import Any

try:  # optional: several times faster than json on sample batches
    import orjson as _orjson
except ImportError:  # pragma: no cover - json does the same, slower
    _orjson = None  # type: ignore[assignment]

from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample, SampleRow, SampleType

SAMPLES_EVENT = "opendrs.samples"
SPEC_VERSION = "1.0"
SCHEMA_VERSION = "1"
_REQUIRED = ("specversion", "id", "source", "type", "time")


def to_envelope(event: Event) -> dict[str, Any]:
    return {
        "specversion": SPEC_VERSION,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "subject": event.subject,
        "time": datetime.fromtimestamp(event.time, UTC).isoformat(),
        "datacontenttype": "application/json",
        "opendrsschema": SCHEMA_VERSION,
        "data": dict(event.data),
    }


def encode(event: Event) -> bytes:
    envelope = to_envelope(event)
    if _orjson is not None and event.type == SAMPLES_EVENT and "columns" in event.data:
        # samples_event wrote every value of this form JSON-safe (orjson would
        # silently turn a NaN into null; json writes it as NaN)
        try:
            return _orjson.dumps(envelope)
        except TypeError:
            pass
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8")


def decode(payload: bytes, *, source: str = "bus") -> Event:
    envelope: Any = None
    if _orjson is not None:
        try:
            envelope = _orjson.loads(payload)
        except _orjson.JSONDecodeError:
            envelope = None  # json says why, or reads the NaN orjson refuses
    if envelope is None:
        try:
            envelope = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"not JSON: {exc}", source=source) from exc
    if not isinstance(envelope, dict):
        raise InvalidInput("a CloudEvent must be a JSON object", source=source)
    for name in _REQUIRED:
        if name not in envelope:
            raise InvalidInput("missing CloudEvents attribute", source=source, field=name)
    if envelope["specversion"] != SPEC_VERSION:
        raise InvalidInput(
            f"unsupported specversion {envelope['specversion']!r}",
            source=source,
            field="specversion",
        )
    schema = envelope.get("opendrsschema", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        raise InvalidInput(f"unsupported schema {schema!r}", source=source, field="opendrsschema")
    try:
        when = datetime.fromisoformat(str(envelope["time"])).timestamp()
    except ValueError as exc:
        raise InvalidInput(f"bad time: {exc}", source=source, field="time") from exc
    data = envelope.get("data", {})
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", source=source, field="data")
    return Event(
        id=str(envelope["id"]),
        source=str(envelope["source"]),
        type=str(envelope["type"]),
        subject=str(envelope.get("subject", "")),
        time=when,
        data=data,
    )


# --- payloads ------------------------------------------------------------


def sample_to_dict(s: Sample) -> dict[str, Any]:
    return {
        "meter": s.meter,
        "entity": s.entity,
        "value": s.value,
        "unit": s.unit,
        "type": s.type.value,
        "time": s.time,
        "kind": s.kind.value,
        "host": s.host,
        "labels": dict(s.labels),
    }


def sample_from_dict(d: Mapping[str, Any], *, source: str = "bus") -> Sample:
    try:
        return Sample(
            meter=str(d["meter"]),
            entity=str(d["entity"]),
            value=float(d["value"]),
            unit=str(d.get("unit", "")),
            type=SampleType(d.get("type", "gauge")),
            time=float(d["time"]),
            kind=EntityKind(d.get("kind", "instance")),
            host=str(d.get("host", "")),
            labels={str(k): str(v) for k, v in dict(d.get("labels", {})).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"bad sample: {exc!r}", source=source, field="data.samples") from exc


# A sample as a plain tuple in the order of Sample's fields: what the agent's hot
# path builds instead of a Sample (a tenth of the cost), `Sample(*row)` the object.
_COLUMNS = ("meter", "entity", "value", "unit", "type", "time", "kind", "host")
_NON_FINITE = {"nan", "inf", "-inf"}


def samples_event(samples: Sequence[Sample], *, source: str, time: float) -> Event:
    """One event carrying `samples` in the column form."""
    rows = [
        (s.meter, s.entity, s.value, s.unit, s.type, s.time, s.kind, s.host, s.labels)
        for s in samples
    ]
    return rows_event(rows, source=source, time=time)


def rows_event(rows: Sequence[SampleRow], *, source: str, time: float) -> Event:
    """As `samples_event`, from sample rows (no Sample objects needed)."""
    return columns_event(row_columns(rows), source=source, time=time)


def row_columns(rows: Sequence[SampleRow]) -> list[list[Any]]:
    """The nine columns of `rows` (in Sample's field order)."""
    flat = list(chain.from_iterable(rows))
    width = len(_COLUMNS) + 1
    if len(flat) != width * len(rows):
        raise ValueError(f"a sample row has {width} fields")
    return [flat[at::width] for at in range(width)]


def columns_event(found: Sequence[Sequence[Any]], *, source: str, time: float) -> Event:
    """As `rows_event`, from the rows' nine columns (see `row_columns`)."""
    if not found or not len(found[0]):
        return measured_event({}, [], [], source=source, time=time)
    meter, entity, value, unit, type_, when, kind, host, labels = found
    fixed = fixed_columns(meter, entity, unit, type_, kind, host, labels)
    return measured_event(fixed, list(value), list(when), source=source, time=time)


def fixed_columns(
    meter: Sequence[str],
    entity: Sequence[str],
    unit: Sequence[str],
    type_: Sequence[SampleType],
    kind: Sequence[EntityKind],
    host: Sequence[str],
    labels: Sequence[Mapping[str, str]],
) -> dict[str, Any]:
    """The wire form of every column of a batch but value and time: what stays
    the same from poll to poll while a host's series do (a publisher keeps it)."""
    columns: dict[str, Any] = {
        name: _squeezed(column)
        for name, column in (
            ("meter", meter),
            ("entity", entity),
            ("unit", unit),
            ("type", type_),  # type and kind stay StrEnums: encoders write their text
            ("kind", kind),
            ("host", host),
        )
    }
    columns["labels"], columns["label"] = _label_table(labels)
    return columns


def measured_event(
    fixed: Mapping[str, Any],
    values: list[float],
    times: list[float],
    *,
    source: str,
    time: float,
) -> Event:
    """A samples event: `fixed` (from `fixed_columns`) with these values and times."""
    count = len(values)
    columns: dict[str, Any] = {}
    if count:
        columns.update(fixed)
        for name, numbers in (("value", values), ("time", times)):
            squeezed = _squeezed(numbers)
            if isinstance(squeezed, list):
                columns[name] = _json_safe(squeezed)
            else:
                columns[name] = squeezed if math.isfinite(squeezed) else repr(float(squeezed))
    return Event(
        type=SAMPLES_EVENT,
        source=source,
        time=time,
        data={"count": count, "columns": columns},
    )


def _squeezed(column: Sequence[Any]) -> Any:
    """One value when every row has it (never a NaN), else the list."""
    first = column[0]
    if first == first and column.count(first) == len(column):
        return first
    return column if isinstance(column, list) else list(column)


def _json_safe(values: list[float]) -> list[float | str]:
    if math.isfinite(sum(values)):
        return values  # type: ignore[return-value]
    return [v if math.isfinite(v) else repr(float(v)) for v in values]


def _label_table(labels: Sequence[Mapping[str, str]]) -> tuple[list[dict[str, str]], Any]:
    """The distinct label maps, and each row's index in them (one index if shared).

    Rows of one device share one labels object at the agent: distinct by identity
    is cheap and nearly as small as distinct by content."""
    index: dict[int, int] = {}
    table: list[dict[str, str]] = []
    codes: list[int] = []
    code = codes.append
    for found in labels:
        at = index.get(id(found))
        if at is None:
            at = index[id(found)] = len(table)
            table.append(dict(found))
        code(at)
    return table, _squeezed(codes)


@dataclass(frozen=True, slots=True)
class SampleColumns:
    """A batch of samples column by column, every column as long as `count`."""

    meter: list[str]
    entity: list[str]
    value: list[float]
    unit: list[str]
    type: list[SampleType]
    time: list[float]
    kind: list[EntityKind]
    host: list[str]
    labels: list[dict[str, str]]

    @property
    def count(self) -> int:
        return len(self.meter)

    def samples(self) -> list[Sample]:
        return [
            Sample(*row)
            for row in zip(
                self.meter,
                self.entity,
                self.value,
                self.unit,
                self.type,
                self.time,
                self.kind,
                self.host,
                self.labels,
                strict=True,
            )
        ]


def sample_columns(event: Event) -> SampleColumns:
    """The samples of a samples event as columns, whichever form it came in."""
    data = event.data
    if "columns" not in data:
        return _columns_of(samples_of(event))
    source = event.source
    raw = data["columns"]
    count = data.get("count")
    if not isinstance(raw, dict) or not isinstance(count, int) or count < 0:
        raise InvalidInput(
            "columns must be an object and count a natural number",
            source=source,
            field="data.columns",
        )
    if count == 0:
        return SampleColumns([], [], [], [], [], [], [], [], [])

    def column(name: str, convert: Any, *, numbers: bool = False) -> list[Any]:
        found = raw.get(name)
        try:
            if isinstance(found, list):
                if len(found) != count:
                    raise ValueError(f"{len(found)} values for {count} samples")
                return _converted(found, convert, numbers)
            if found is None:
                raise ValueError("missing")
            return [convert(found)] * count
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"bad sample column: {exc}", source=source, field=f"data.columns.{name}"
            ) from exc

    def text(value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected text, got {value!r}")
        return value

    def number(value: Any) -> float:
        if isinstance(value, str) and value not in _NON_FINITE:
            raise ValueError(f"not a number: {value!r}")
        if isinstance(value, bool):
            raise TypeError(f"not a number: {value!r}")
        return float(value)

    table = raw.get("labels", [])
    if not isinstance(table, list) or not all(
        isinstance(found, dict) and all(isinstance(v, str) for v in found.values())
        for found in table
    ):
        raise InvalidInput(
            "labels must be a list of objects of texts",
            source=source,
            field="data.columns.labels",
        )

    def label(at: Any) -> dict[str, str]:
        if isinstance(at, bool) or not isinstance(at, int):
            raise TypeError(f"a label index must be an integer, got {at!r}")
        if not 0 <= at < len(table):
            raise ValueError(f"label index {at} outside the {len(table)} label maps")
        return table[at]  # type: ignore[no-any-return]

    # every sample gets its own map, even when the wire shares one
    labels = (
        [dict(found) for found in column("label", label)] if table else [{} for _ in range(count)]
    )
    return SampleColumns(
        meter=column("meter", text),
        entity=column("entity", text),
        value=column("value", number, numbers=True),
        unit=column("unit", text),
        type=column("type", SampleType),
        time=column("time", number, numbers=True),
        kind=column("kind", EntityKind),
        host=column("host", text),
        labels=labels,
    )


def _converted(found: list[Any], convert: Any, numbers: bool) -> list[Any]:
    """`convert` of every value of a wire column. A column of plain numbers is
    converted straight, one of texts or integers (meters, units, label indexes: a
    few distinct values) converts each distinct value once; anything else goes
    value by value, which says what is wrong."""
    kinds = set(map(type, found))
    if numbers and kinds <= {int, float}:
        return list(map(float, found))
    if not numbers and (kinds == {str} or kinds == {int}):
        once = {v: convert(v) for v in set(found)}
        return list(map(once.__getitem__, found))
    return [convert(v) for v in found]


def _columns_of(samples: Sequence[Sample]) -> SampleColumns:
    return SampleColumns(
        meter=[s.meter for s in samples],
        entity=[s.entity for s in samples],
        value=[s.value for s in samples],
        unit=[s.unit for s in samples],
        type=[s.type for s in samples],
        time=[s.time for s in samples],
        kind=[s.kind for s in samples],
        host=[s.host for s in samples],
        labels=[dict(s.labels) for s in samples],
    )


def samples_of(event: Event) -> list[Sample]:
    """The samples of a samples event, in either form."""
    if "columns" in event.data:
        return sample_columns(event).samples()
    raw = event.data.get("samples", [])
    if not isinstance(raw, list):
        raise InvalidInput("samples must be a list", source=event.source, field="data.samples")
    return [sample_from_dict(d, source=event.source) for d in raw]


def transition_to_dict(t: AlarmTransition) -> dict[str, Any]:
    return {
        "rule": t.rule,
        "entity": t.entity,
        "previous": t.previous.value,
        "current": t.current.value,
        "time": t.time,
        "value": t.value,
        "severity": t.severity.value,
        "source": t.source,
        "reason": t.reason,
        "labels": dict(t.labels),
    }


def transition_from_dict(d: Mapping[str, Any], *, source: str = "bus") -> AlarmTransition:
    try:
        value = d.get("value")
        return AlarmTransition(
            rule=str(d["rule"]),
            entity=str(d["entity"]),
            previous=AlarmState(d["previous"]),
            current=AlarmState(d["current"]),
            time=float(d["time"]),
            value=None if value is None else float(value),
            severity=Severity(d.get("severity", "warning")),
            source=str(d.get("source", "")),
            reason=str(d.get("reason", "")),
            labels={str(k): str(v) for k, v in dict(d.get("labels", {})).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"bad alarm transition: {exc!r}", source=source, field="data") from exc
