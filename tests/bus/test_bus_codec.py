"""The CloudEvents codec: what is encoded decodes to the same values, and what
does not decode is an InvalidInput naming the attribute at fault."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
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
