"""The CloudEvents codec: what is encoded decodes to the same values, and what
does not decode is an InvalidInput naming the attribute at fault."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.bus import codec
from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.sample import EntityKind, Sample, SampleType

names = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20
)
label_maps = st.dictionaries(names, names, max_size=3)
times = st.floats(min_value=0, max_value=4_000_000_000, allow_nan=False)
values = st.floats(allow_nan=False, allow_infinity=False, width=64)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | values | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
events = st.builds(
    Event,
    type=names,
    source=names,
    time=times,
    data=st.dictionaries(names, json_values, max_size=4),
    subject=names | st.just(""),
    id=names,
)
samples = st.builds(
    Sample,
    meter=names,
    entity=names,
    value=values,
    unit=names,
    type=st.sampled_from(SampleType),
    time=times,
    kind=st.sampled_from(EntityKind),
    host=names | st.just(""),
    labels=label_maps,
)
transitions = st.builds(
    AlarmTransition,
    rule=names,
    entity=names,
    previous=st.sampled_from(AlarmState),
    current=st.sampled_from(AlarmState),
    time=times,
    value=st.none() | values,
    severity=st.sampled_from(Severity),
    source=names,
    reason=names,
    labels=label_maps,
)


@given(events)
def test_an_event_survives_the_envelope(event: Event) -> None:
    back = codec.decode(codec.encode(event))
    assert (back.id, back.type, back.source, back.subject) == (
        event.id,
        event.type,
        event.source,
        event.subject,
    )
    assert back.data == event.data
    assert back.time == pytest.approx(event.time, abs=1e-6)  # ISO time keeps microseconds


@given(st.lists(samples, max_size=5))
def test_samples_survive_the_bus(batch: list[Sample]) -> None:
    event = codec.samples_event(batch, source="agent/h1", time=1.0)
    assert codec.samples_of(codec.decode(codec.encode(event))) == batch


@given(transitions)
def test_alarm_transitions_survive_the_bus(transition: AlarmTransition) -> None:
    raw = json.loads(json.dumps(codec.transition_to_dict(transition)))
    assert codec.transition_from_dict(raw) == transition


def test_the_envelope_is_cloudevents_with_our_schema_version() -> None:
    envelope = json.loads(codec.encode(Event(type="t", source="s", time=0.0, id="x")))
    assert envelope["specversion"] == "1.0"
    assert envelope["opendrsschema"] == codec.SCHEMA_VERSION
    assert envelope["time"] == "1970-01-01T00:00:00+00:00"


_GOOD = {"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "1970-01-01"}


def _envelope(**changes: object) -> bytes:
    envelope = {**_GOOD, **changes}
    return json.dumps({k: v for k, v in envelope.items() if v is not None}).encode()


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"{nope", "", "not JSON"),
        (b"\xff\xfe", "", "not JSON"),
        (b"[1, 2]", "", "JSON object"),
        (_envelope(id=None), "id", "missing"),
        (_envelope(specversion="0.3"), "specversion", "0.3"),
        (_envelope(time="yesterday"), "time", "bad time"),
        (_envelope(opendrsschema="9"), "opendrsschema", "schema"),
        (_envelope(data=[1]), "data", "object"),
    ],
)
def test_what_does_not_decode_says_why(payload: bytes, field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        codec.decode(payload, source="samples.1")
    assert caught.value.field == field
    assert caught.value.source == "samples.1"
    assert words in str(caught.value)


def test_a_bad_sample_names_the_field() -> None:
    event = Event(
        type="opendrs.samples", source="agent", time=0.0, data={"samples": [{"meter": "x"}]}
    )
    with pytest.raises(InvalidInput) as caught:
        codec.samples_of(event)
    assert caught.value.field == "data.samples"


any_values = st.floats(width=64)  # NaN and infinities included


def _same_sample(a: Sample, b: Sample) -> bool:
    both_nan = math.isnan(a.value) and math.isnan(b.value)
    return (a.value == b.value or both_nan) and replace(a, value=0.0) == replace(b, value=0.0)


@settings(deadline=None)  # the first run pays for importing orjson's paths
@given(st.lists(samples, max_size=6), st.lists(any_values, max_size=6))
def test_samples_with_any_value_survive_the_bus_column_by_column(
    batch: list[Sample], found: list[float]
) -> None:
    batch = [replace(s, value=v) for s, v in zip(batch, found, strict=False)] + batch[len(found) :]
    payload = codec.encode(codec.samples_event(batch, source="agent/h1", time=1.0))
    back = codec.samples_of(codec.decode(payload))
    assert len(back) == len(batch)
    assert all(_same_sample(a, b) for a, b in zip(back, batch, strict=True))
    json.loads(payload, parse_constant=_refused)  # plain JSON: no NaN nor Infinity


def _refused(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_values_every_sample_shares_are_sent_once() -> None:
    batch = [
        Sample("cpu_util", f"vm-{i}", float(i), "%", SampleType.GAUGE, 60.0, host="h1")
        for i in range(3)
    ]
    columns = codec.samples_event(batch, source="a", time=60.0).data["columns"]
    assert (columns["meter"], columns["time"], columns["host"]) == ("cpu_util", 60.0, "h1")
    assert list(columns["entity"]) == ["vm-0", "vm-1", "vm-2"]


def test_the_older_one_object_per_sample_form_still_decodes() -> None:
    sample = Sample("memory", "vm", 512.0, "MB", SampleType.GAUGE, 5.0, labels={"a": "b"})
    event = Event(
        type="opendrs.samples",
        source="old",
        time=5.0,
        data={"samples": [codec.sample_to_dict(sample)]},
    )
    assert codec.samples_of(codec.decode(codec.encode(event))) == [sample]
    columns = codec.sample_columns(event)
    assert (columns.count, columns.meter, columns.labels) == (1, ["memory"], [{"a": "b"}])


@settings(deadline=None)
@given(st.lists(samples, max_size=5))
def test_sample_columns_hold_the_same_samples(batch: list[Sample]) -> None:
    event = codec.decode(codec.encode(codec.samples_event(batch, source="a", time=0.0)))
    assert codec.sample_columns(event).samples() == batch


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"meter": ["a", "b"], "entity": "e", "value": 1.0}, "data.columns.meter"),
        ({"meter": "a", "entity": "e", "value": "high"}, "data.columns.value"),
        ({"meter": "a", "entity": "e", "value": 1.0, "type": "weird"}, "data.columns.type"),
        ({"meter": "a", "value": 1.0}, "data.columns.entity"),
        ({"meter": "a", "entity": "e", "value": 1.0, "labels": [{"k": 1}]}, "data.columns.labels"),
        (
            {"meter": "a", "entity": "e", "value": 1.0, "labels": [{"k": "v"}], "label": 1},
            "data.columns.label",
        ),
    ],
)
def test_a_bad_sample_column_names_the_field(columns: dict[str, object], field: str) -> None:
    full = {"unit": "", "type": "gauge", "time": 0.0, "kind": "instance", "host": "", **columns}
    event = Event(
        type="opendrs.samples", source="agent", time=0.0, data={"count": 1, "columns": full}
    )
    with pytest.raises(InvalidInput) as caught:
        codec.samples_of(event)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("columns", "field"),
    [
        ({"label": [0, False]}, "data.columns.label"),  # False is not the index 0
        ({"label": [0, 1.0]}, "data.columns.label"),
        ({"label": [0, 5]}, "data.columns.label"),
        ({"value": [1.0, True]}, "data.columns.value"),
        ({"value": [1.0, "high"]}, "data.columns.value"),
        ({"meter": ["a", 1]}, "data.columns.meter"),
        ({"meter": ["a", ["b"]]}, "data.columns.meter"),
        ({"kind": ["instance", "weird"]}, "data.columns.kind"),
    ],
)
def test_a_bad_value_among_many_in_a_column_names_the_field(
    columns: dict[str, object], field: str
) -> None:
    full = {
        "meter": ["a", "b"],
        "entity": "e",
        "value": [1.0, 2],
        "unit": "",
        "type": "gauge",
        "time": 0.0,
        "kind": ["instance", "host"],
        "host": "",
        "labels": [{"k": "v"}],
        "label": [0, 0],
        **columns,
    }
    event = Event(
        type="opendrs.samples", source="agent", time=0.0, data={"count": 2, "columns": full}
    )
    with pytest.raises(InvalidInput) as caught:
        codec.sample_columns(event)
    assert caught.value.field == field


def test_columns_of_rows_make_the_same_event_and_a_ragged_row_is_refused() -> None:
    labels = {"device": "vda"}
    rows = [
        ("cpu", "vm", 1.5, "ns", SampleType.CUMULATIVE, 3.0, EntityKind.INSTANCE, "h", {}),
        (
            "disk.device.read.bytes",
            "vm",
            2.0,
            "B",
            SampleType.GAUGE,
            3.0,
            EntityKind.INSTANCE,
            "h",
            labels,
        ),
    ]
    columns = codec.row_columns(rows)
    assert columns[0] == ["cpu", "disk.device.read.bytes"] and columns[8] == [{}, labels]
    event = codec.columns_event(columns, source="s", time=3.0)
    assert event.data == codec.rows_event(rows, source="s", time=3.0).data
    assert codec.samples_of(codec.decode(codec.encode(event))) == [Sample(*row) for row in rows]
    with pytest.raises(ValueError, match="9 fields"):
        codec.row_columns([rows[0], rows[1][:8]])  # type: ignore[list-item]
