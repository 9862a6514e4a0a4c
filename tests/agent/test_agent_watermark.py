"""Watermark alarms at the agent: `for`, hysteresis, per-entity state, and
transitions only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.agent.plugin import PollContext, PollResult
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.config import WatermarkRule
from opendrs.domain.alarm import AlarmState, AlarmTransition, Severity
from opendrs.domain.counters import HostCounters, InstanceCounters
from opendrs.domain.errors import InvalidInput
from opendrs.domain.sample import EntityKind, Sample, SampleType

CPU_HIGH = WatermarkRule(
    name="host_cpu_high",
    meter="compute.node.cpu.percent",
    threshold=80.0,
    clear=70.0,
    for_samples=2,
    severity="critical",
)
LOW_RAM = WatermarkRule(
    name="low_ram", meter="memory.free.percent", op="<", threshold=15.0, clear=20.0
)
HOST = HostCounters("h1", 0.0, 4, 0, 1024, 512.0)


def host_sample(
    value: float, t: float, meter: str = "compute.node.cpu.percent", entity: str = "h1"
) -> Sample:
    return Sample(meter, entity, value, "%", SampleType.GAUGE, t, EntityKind.HOST, entity)


def feed(plugin: WatermarkPlugin, values: list[float], **kw: str) -> list[AlarmTransition]:
    out: list[AlarmTransition] = []
    for t, value in enumerate(values):
        ctx = PollContext("h1", float(t))
        plugin.on_host(ctx, HOST, [host_sample(value, float(t), **kw)])
        out.extend(ctx.reported)
    return out


def test_fires_after_for_samples_and_only_once() -> None:
    plugin = WatermarkPlugin([CPU_HIGH])
    transitions = feed(plugin, [50, 85, 90, 95, 99])
    assert len(transitions) == 1
    t = transitions[0]
    assert (t.previous, t.current, t.time, t.value) == (AlarmState.OK, AlarmState.ALARM, 2.0, 90)
    assert (t.rule, t.entity, t.source, t.severity) == (
        "host_cpu_high",
        "h1",
        "agent:h1",
        Severity.CRITICAL,
    )
    assert t.labels == {"host": "h1", "meter": "compute.node.cpu.percent"}
    assert "90 > 80 for 2 poll(s)" in t.reason
    assert plugin.state("host_cpu_high", "h1") == AlarmState.ALARM


def test_an_interrupted_streak_does_not_fire() -> None:
    assert feed(WatermarkPlugin([CPU_HIGH]), [85, 50, 85, 79, 81]) == []


def test_hysteresis_keeps_the_alarm_between_clear_and_threshold() -> None:
    plugin = WatermarkPlugin([CPU_HIGH])
    transitions = feed(plugin, [90, 90, 75, 79, 71, 70, 90])
    assert [(t.current, t.time) for t in transitions] == [
        (AlarmState.ALARM, 1.0),
        (AlarmState.OK, 5.0),  # 70 is no longer above the clear level
    ]


def test_clear_samples_must_be_consecutive() -> None:
    rule = CPU_HIGH.model_copy(update={"for_samples": 1, "clear_samples": 2})
    transitions = feed(WatermarkPlugin([rule]), [90, 60, 75, 60, 60])
    assert [(t.current, t.time) for t in transitions] == [
        (AlarmState.ALARM, 0.0),
        (AlarmState.OK, 4.0),
    ]


def test_below_rules_and_no_clear_level() -> None:
    transitions = feed(WatermarkPlugin([LOW_RAM]), [30, 10, 17, 25], meter="memory.free.percent")
    assert [(t.current, t.time) for t in transitions] == [
        (AlarmState.ALARM, 1.0),
        (AlarmState.OK, 3.0),
    ]
    plain = CPU_HIGH.model_copy(update={"clear": None, "for_samples": 1})
    transitions = feed(WatermarkPlugin([plain]), [81, 80, 81])
    assert [t.current for t in transitions] == [AlarmState.ALARM, AlarmState.OK, AlarmState.ALARM]


def test_state_is_per_entity_and_series() -> None:
    rule = WatermarkRule(
        name="disk_busy", meter="disk.device.read.bytes.rate", entity="instance", threshold=100.0
    )
    plugin = WatermarkPlugin([rule, CPU_HIGH])
    counters = InstanceCounters("vm", 0.0, 1, 0, 1)
    ctx = PollContext("h1", 0.0)
    samples = [
        Sample(
            rule.meter,
            "vm",
            v,
            "B/s",
            SampleType.GAUGE,
            0.0,
            EntityKind.INSTANCE,
            "h1",
            {"device": d},
        )
        for d, v in (("vda", 500.0), ("vdb", 5.0))
    ]
    plugin.on_disk(ctx, counters, samples)
    # an instance rule never sees host samples, nor a host rule instance samples
    plugin.on_host(ctx, HOST, [host_sample(500.0, 0.0, meter=rule.meter)])
    assert [(t.entity, t.labels["device"]) for t in ctx.reported] == [("vm", "vda")]
    assert plugin.state("disk_busy", "vm", {"device": "vda"}) == AlarmState.ALARM
    assert plugin.state("disk_busy", "vm", {"device": "vdb"}) == AlarmState.OK
    other = feed(plugin, [90, 90], entity="h2")
    assert [t.entity for t in other] == ["h2"]
    assert plugin.state("host_cpu_high", "h1") == AlarmState.OK


def test_replacing_rules_keeps_state_of_rules_with_the_same_name() -> None:
    plugin = WatermarkPlugin([CPU_HIGH, LOW_RAM])
    feed(plugin, [90, 90])
    feed(plugin, [5], meter="memory.free.percent")
    assert plugin.state("low_ram", "h1") == AlarmState.ALARM
    stricter = CPU_HIGH.model_copy(update={"threshold": 95.0, "clear": 50.0})
    plugin.replace_rules([stricter])
    assert plugin.state("host_cpu_high", "h1") == AlarmState.ALARM
    assert plugin.state("low_ram", "h1") == AlarmState.OK
    assert feed(plugin, [60]) == []  # the new clear level applies to the kept state
    assert [t.current for t in feed(plugin, [40])] == [AlarmState.OK]


def test_bad_rules_are_refused_and_keep_the_old_ones() -> None:
    plugin = WatermarkPlugin([CPU_HIGH])
    wrong_side = CPU_HIGH.model_copy(update={"clear": 90.0})
    with pytest.raises(InvalidInput, match="at or below the threshold") as err:
        plugin.replace_rules([wrong_side])
    assert err.value.field == "clear"
    assert "host_cpu_high" in err.value.source
    with pytest.raises(InvalidInput, match="two rules"):
        WatermarkPlugin([CPU_HIGH, CPU_HIGH])
    assert plugin.rules == [CPU_HIGH]


def test_quiet_entities_that_left_are_forgotten_but_alarms_are_kept() -> None:
    plugin = WatermarkPlugin([CPU_HIGH])
    feed(plugin, [90, 90], entity="h1")
    feed(plugin, [90], entity="gone")
    plugin.on_poll_done(PollResult(samples=(), transitions=()))
    assert plugin.state("host_cpu_high", "h1") == AlarmState.ALARM
    # the pending streak of `gone` was dropped: one more breach does not fire
    assert feed(plugin, [90], entity="gone") == []


@given(st.lists(st.floats(min_value=0, max_value=100), max_size=60))
def test_transitions_alternate_and_match_state_changes(values: list[float]) -> None:
    plugin = WatermarkPlugin([CPU_HIGH])
    transitions = feed(plugin, values)
    expected = AlarmState.ALARM
    for t in transitions:
        assert t.current == expected
        assert t.previous != t.current
        expected = AlarmState.OK if expected == AlarmState.ALARM else AlarmState.ALARM
    final = transitions[-1].current if transitions else AlarmState.OK
    assert plugin.state("host_cpu_high", "h1") == final
    # firing needs two breaching polls in a row
    for t in transitions:
        if t.current == AlarmState.ALARM:
            i = int(t.time)
            assert values[i] > 80 and values[i - 1] > 80
