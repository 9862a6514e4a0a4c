"""CloudEvents 1.0 structured JSON envelopes for domain events, with our schema
version; anything that does not decode is an InvalidInput naming the problem."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample, SampleType

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
    return json.dumps(to_envelope(event), separators=(",", ":")).encode("utf-8")


def decode(payload: bytes, *, source: str = "bus") -> Event:
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


def samples_event(samples: Sequence[Sample], *, source: str, time: float) -> Event:
    return Event(
        type="opendrs.samples",
        source=source,
        time=time,
        data={"samples": [sample_to_dict(s) for s in samples]},
    )


def samples_of(event: Event) -> list[Sample]:
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
