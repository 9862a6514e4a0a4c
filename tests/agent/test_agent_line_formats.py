"""The statsd and Graphite plugins write a poll at once from the fixed parts of
its lines, kept while the poll's layout stays the same, and every number of the
poll in one call; the text must be, poll after poll, the very text of the plain
line-by-line definition of each protocol, and every number must read back as
the value it was."""

from __future__ import annotations

import math
import random

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.agent.batch import ColumnLayout, PollColumns
from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.agent.plugins.naming import PathNamer
from opendrs.agent.plugins.numbers import number_text, number_texts
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.config import GraphiteSettings, StatsdSettings
from opendrs.domain.clock import ManualClock
from opendrs.domain.sample import EntityKind, SampleRow, SampleType

_LABELS = [{}, {"device": "vda"}, {"interface": "tap0"}, {"device": "vda", "volume": "true"}]
_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**17), 10**17).map(float),
    st.sampled_from([0.0, -0.0, 1e15, 1e15 - 1, 0.5, 2048.0]),
)
_series = st.tuples(
    st.sampled_from(["cpu", "cpu_util", "disk.device.read.bytes"]),
    st.sampled_from(["vm-1", "vm 2", "host.a"]),
    st.sampled_from(list(SampleType)),
    st.sampled_from(list(EntityKind)),
    st.integers(0, len(_LABELS) - 1),
)


def _rows(
    series: list[tuple[str, str, SampleType, EntityKind, int]], values: list[float], t: float
) -> list[SampleRow]:
    return [
        (meter, entity, value, "u", kind, t, entity_kind, "h", _LABELS[label])
        for (meter, entity, kind, entity_kind, label), value in zip(series, values, strict=False)
    ]


# polls: a series layout (kept or changed), then values for it
_polls = st.lists(
    st.tuples(st.booleans(), st.lists(_series, max_size=6), st.lists(_value, max_size=6)),
    min_size=1,
    max_size=6,
)


def _path(namer: PathNamer, row: SampleRow) -> str:
    return namer._path(row[6], row[1], row[0], row[8])


def _number(value: float) -> str:
    return number_text(value).decode()


class Polls:
    """Columns of polls whose layout is the very same object while it is kept."""

    def __init__(self) -> None:
        self.layout: ColumnLayout | None = None

    def columns(self, rows: list[SampleRow], kept: bool) -> PollColumns:
        made = PollColumns.of_rows(rows)
        if kept and self.layout is not None and self.layout.same_series(made.layout):
            return PollColumns(self.layout, made.values, made.times)
        self.layout = made.layout
        return made


@settings(max_examples=300, deadline=None)
@given(st.lists(_value.filter(math.isfinite), max_size=40))
def test_every_number_reads_back_as_its_value(values: list[float]) -> None:
    texts = number_texts(np.array(values, dtype=float))
    assert [float(text) for text in texts] == values
    assert texts == [number_text(v) for v in values]
    # a whole number is written as an integer; no text begins with a sign but a minus
    assert all(
        b"." not in t and b"e" not in t
        for t, v in zip(texts, values, strict=True)
        if v == int(v) and abs(v) < 2**53
    )
    assert not any(t.startswith(b"+") or t == b"-0" for t in texts)


@settings(max_examples=200, deadline=None)
@given(_polls)
def test_graphite_text_is_the_line_by_line_text(
    polls: list[tuple[bool, list[tuple[str, str, SampleType, EntityKind, int]], list[float]]],
) -> None:
    plugin = GraphitePlugin(GraphiteSettings(), clock=ManualClock(0.0))
    namer = PathNamer("opendrs")
    made = Polls()
    layout: list[tuple[str, str, SampleType, EntityKind, int]] = []
    for step, (keep, series, values) in enumerate(polls):
        kept = keep and bool(layout)
        layout = layout if kept else series
        rows = _rows(layout, [*values, *[1.0] * len(layout)], 1000.0 + step * 300.5)
        expected = [
            f"{_path(namer, r)} {_number(r[2])} {int(r[5])}\n" for r in rows if math.isfinite(r[2])
        ]
        text, count = plugin._payload(made.columns(rows, kept))
        assert (text.decode(), count) == ("".join(expected), len(expected))


@settings(max_examples=200, deadline=None)
@given(_polls, st.sampled_from([1.0, 0.5]), st.integers(0, 3))
def test_statsd_lines_are_the_line_by_line_lines(
    polls: list[tuple[bool, list[tuple[str, str, SampleType, EntityKind, int]], list[float]]],
    rate: float,
    seed: int,
) -> None:
    plugin = StatsdPlugin(StatsdSettings(sample_rate=rate), rng=random.Random(seed))
    draws = random.Random(seed)
    namer = PathNamer("opendrs")
    made = Polls()
    last: dict[str, float] = {}
    suffix = "|c" if rate == 1.0 else f"|c|@{rate:g}"
    layout: list[tuple[str, str, SampleType, EntityKind, int]] = []
    for keep, series, values in polls:
        kept = keep and bool(layout)
        if not kept and len(last) > 4 * max(len(series), 1):
            # the table of counters is bounded: series gone are forgotten
            present = {_path(namer, row) for row in _rows(series, [0.0] * len(series), 0.0)}
            last = {path: value for path, value in last.items() if path in present}
        layout = layout if kept else series
        rows = _rows(layout, [*values, *[1.0] * len(layout)], 1000.0)
        expected: list[str] = []
        for row in rows:
            path, value = _path(namer, row), row[2]
            if row[4] is SampleType.GAUGE:
                if not math.isfinite(value):
                    continue
                if value < 0:
                    expected.append(f"{path}:0|g")
                expected.append(f"{path}:{_number(value)}|g")
            elif row[4] is SampleType.CUMULATIVE:
                previous = last.get(path)
                last[path] = value
                if previous is None or value < previous:
                    continue
                if rate < 1.0 and draws.random() >= rate:
                    continue
                if math.isfinite(value - previous):
                    expected.append(f"{path}:{_number(value - previous)}{suffix}")
            elif math.isfinite(value):
                expected.append(f"{path}:{_number(value)}|c")
        text, count = plugin._payload(made.columns(rows, kept))
        assert (text.decode(), count) == ("".join(f"{line}\n" for line in expected), len(expected))


def test_only_changed_gauges_sends_a_gauge_again_when_it_changes_or_is_due() -> None:
    settings_ = StatsdSettings(only_changed_gauges=True, all_gauges_every=3)
    plugin = StatsdPlugin(settings_)
    series = [
        ("memory", "vm", SampleType.GAUGE, EntityKind.INSTANCE, 0),
        ("cpu_util", "vm", SampleType.GAUGE, EntityKind.INSTANCE, 0),
        ("cpu", "vm", SampleType.CUMULATIVE, EntityKind.INSTANCE, 0),
    ]

    made = Polls()

    def poll(memory: float, util: float, cpu: float) -> list[str]:
        rows = _rows(series, [memory, util, cpu], 0.0)
        return plugin._payload(made.columns(rows, True))[0].decode().splitlines()

    memory, util, cpu = (
        "opendrs.instance.vm.memory",
        "opendrs.instance.vm.cpu_util",
        "opendrs.instance.vm.cpu",
    )
    assert poll(512, 5, 10) == [f"{memory}:512|g", f"{util}:5|g"]  # a first poll: all
    assert poll(512, 7, 20) == [f"{util}:7|g", f"{cpu}:10|c"]
    assert poll(512, 7, 30) == [f"{cpu}:10|c"]
    assert poll(512, 7, 40) == [f"{memory}:512|g", f"{util}:7|g", f"{cpu}:10|c"]  # due
    assert poll(512, -1, 50) == [f"{util}:0|g", f"{util}:-1|g", f"{cpu}:10|c"]
    default = StatsdPlugin(StatsdSettings())
    for _ in range(2):
        payload, count = default._payload(made.columns(_rows(series, [512, 7, 10], 0.0), True))
    assert count == 3 and f"{memory}:512|g" in payload.decode()
