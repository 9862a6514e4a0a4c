"""The statsd and Graphite plugins write a poll at once from templates kept while
the poll's series stay the same; the text must be, poll after poll, the very
text of the plain line-by-line definition of each protocol."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.agent.plugins.graphite import GraphitePlugin
from opendrs.agent.plugins.naming import PathNamer
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.bus.codec import SampleRow
from opendrs.config import GraphiteSettings, StatsdSettings
from opendrs.domain.clock import ManualClock
from opendrs.domain.sample import EntityKind, SampleType

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


@settings(max_examples=200, deadline=None)
@given(_polls)
def test_graphite_text_is_the_line_by_line_text(
    polls: list[tuple[bool, list[tuple[str, str, SampleType, EntityKind, int]], list[float]]],
) -> None:
    plugin = GraphitePlugin(GraphiteSettings(), clock=ManualClock(0.0))
    namer = PathNamer("opendrs")
    layout: list[tuple[str, str, SampleType, EntityKind, int]] = []
    for step, (keep, series, values) in enumerate(polls):
        layout = layout if keep and layout else series
        rows = _rows(layout, [*values, *[1.0] * len(layout)], 1000.0 + step * 300.5)
        expected = "".join(f"{_path(namer, r)} {r[2]:.17g} {int(r[5])}\n" for r in rows)
        assert plugin._text(rows) == expected


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
    last: dict[str, float] = {}
    suffix = "|c" if rate == 1.0 else f"|c|@{rate:g}"
    layout: list[tuple[str, str, SampleType, EntityKind, int]] = []
    for keep, series, values in polls:
        if not (keep and layout) and series != layout and len(last) > 4 * max(len(series), 1):
            # the table of counters is bounded: series gone are forgotten
            present = {_path(namer, row) for row in _rows(series, [0.0] * len(series), 0.0)}
            last = {path: value for path, value in last.items() if path in present}
        layout = layout if keep and layout else series
        rows = _rows(layout, [*values, *[1.0] * len(layout)], 1000.0)
        expected: list[str] = []
        for row in rows:
            path, value = _path(namer, row), row[2]
            if row[4] is SampleType.GAUGE:
                if value < 0:
                    expected.append(f"{path}:0|g")
                expected.append(f"{path}:{value:g}|g")
            elif row[4] is SampleType.CUMULATIVE:
                previous = last.get(path)
                last[path] = value
                if previous is None or value < previous:
                    continue
                if rate < 1.0 and draws.random() >= rate:
                    continue
                expected.append(f"{path}:{value - previous:g}{suffix}")
            else:
                expected.append(f"{path}:{value:g}|c")
        assert plugin._text(rows) == ("".join(f"{line}\n" for line in expected), len(expected))


def test_only_changed_gauges_sends_a_gauge_again_when_it_changes_or_is_due() -> None:
    settings_ = StatsdSettings(only_changed_gauges=True, all_gauges_every=3)
    plugin = StatsdPlugin(settings_)
    series = [
        ("memory", "vm", SampleType.GAUGE, EntityKind.INSTANCE, 0),
        ("cpu_util", "vm", SampleType.GAUGE, EntityKind.INSTANCE, 0),
        ("cpu", "vm", SampleType.CUMULATIVE, EntityKind.INSTANCE, 0),
    ]

    def poll(memory: float, util: float, cpu: float) -> list[str]:
        return plugin._text(_rows(series, [memory, util, cpu], 0.0))[0].splitlines()

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
        text, count = default._text(_rows(series, [512, 7, 10], 0.0))
    assert count == 3 and f"{memory}:512|g" in text
