"""The watermark plugin on a real agent poll: the issue's three cases (host free
RAM below 15%, an instance over its 5 Gb/s limit, an instance at 100% on all its
vCPUs), per-instance and per-flavor overrides, N-of-M and duration `for`."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import PollContext
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.config import AgentSettings, WatermarkOverride, WatermarkRule
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.sample import EntityKind, Sample, SampleType

GBIT = 1e9 / 8  # bytes per second in one Gb/s


class Scene:
    """A host whose instances run at given CPU and outbound rates."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.free_fraction = 0.5
        # name: (vcpus, busy vcpus, outbound B/s, flavor, metadata)
        self.vms: dict[str, tuple[int, float, float, str, dict[str, str]]] = {}

    def host_counters(self, host: str) -> HostCounters:
        t = self.clock.now()
        return HostCounters(host, t, 8, int(t * 2e9), 65536, 65536 * self.free_fraction)

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        t = self.clock.now()
        return [
            InstanceCounters(
                name,
                t,
                vcpus,
                int(t * busy * 1e9),
                4096,
                interfaces={"tap0": DeviceBytes(int(t * 1e6), int(t * outbound))},
                flavor=flavor,
                metadata=metadata,
            )
            for name, (vcpus, busy, outbound, flavor, metadata) in self.vms.items()
        ]


def run(rules: list[WatermarkRule], scene: Scene, polls: int) -> list[AlarmTransition]:
    agent = Agent("h1", scene, PluginPipeline([WatermarkPlugin(rules)]), scene.clock)
    found: list[AlarmTransition] = []
    for _ in range(polls):
        found.extend(agent.poll_once().transitions)
        scene.clock.advance(60)
    return found


def fired(transitions: list[AlarmTransition]) -> set[tuple[str, str]]:
    return {(t.rule, t.entity) for t in transitions if t.current == AlarmState.ALARM}


def test_host_free_ram_below_15_percent_fires_with_the_default_rules() -> None:
    scene = Scene(ManualClock())
    scene.free_fraction = 0.12
    transitions = run(AgentSettings().watermarks, scene, 2)
    assert fired(transitions) == {("host_low_free_ram", "h1")}
    [t] = transitions
    assert t.value == pytest.approx(12.0)
    assert "memory.free.percent 12 < 15" in t.reason


BANDWIDTH = WatermarkRule(
    name="instance_over_bandwidth_limit",
    meter="network.outgoing.bytes.rate",
    entity="instance",
    scale=8,  # compare in bits per second
    threshold=math.inf,  # only instances whose limit is known
    threshold_metadata="qos.outbound_bps.{interface}",
    overrides=[
        WatermarkOverride(instance="configured", threshold=5e9),
        WatermarkOverride(flavor="m1.capped", threshold=5e9),
        WatermarkOverride(instance="exempt", enabled=False),
    ],
    severity="critical",
)


def test_an_instance_doing_20_gbps_over_its_5_gbps_limit_fires() -> None:
    scene = Scene(ManualClock())
    limit = {"qos.outbound_bps.tap0": "5e9"}
    scene.vms = {
        "from-metadata": (2, 0.1, 20 * GBIT, "", limit),
        "configured": (2, 0.1, 20 * GBIT, "", {}),
        "by-flavor": (2, 0.1, 20 * GBIT, "m1.capped", {}),
        "within-limit": (2, 0.1, 4 * GBIT, "", limit),
        "no-limit": (2, 0.1, 20 * GBIT, "m1.large", {}),
        "exempt": (2, 0.1, 20 * GBIT, "m1.capped", limit),
    }
    transitions = run([BANDWIDTH], scene, 3)
    assert {entity for _, entity in fired(transitions)} == {
        "from-metadata",
        "configured",
        "by-flavor",
    }
    first = next(t for t in transitions if t.entity == "from-metadata")
    assert first.value == pytest.approx(20e9)
    assert first.labels["interface"] == "tap0"
    assert "> 5e+09" in first.reason
    assert len(transitions) == 3  # reported once, not at every poll


def test_an_instance_at_100_percent_on_all_its_vcpus_fires() -> None:
    rule = WatermarkRule(
        name="instance_cpu_saturated",
        meter="cpu_util",
        entity="instance",
        op=">=",
        threshold=99.0,
        clear=90.0,
        for_samples=2,
    )
    scene = Scene(ManualClock())
    scene.vms = {
        "all-busy": (4, 4.0, 0.0, "", {}),
        "one-of-four": (4, 1.0, 0.0, "", {}),
        "single": (1, 1.0, 0.0, "", {}),
    }
    transitions = run([rule], scene, 3)  # cpu_util from the 2nd poll; fires on the 3rd
    assert fired(transitions) == {
        ("instance_cpu_saturated", "all-busy"),
        ("instance_cpu_saturated", "single"),
    }
    assert all(t.value == pytest.approx(100.0) for t in transitions)


def feed(plugin: WatermarkPlugin, points: list[tuple[float, float]]) -> list[AlarmTransition]:
    out: list[AlarmTransition] = []
    host = HostCounters("h1", 0.0, 4, 0, 1024, 512.0)
    for t, value in points:
        ctx = PollContext("h1", t)
        sample = Sample("load", "h1", value, "%", SampleType.GAUGE, t, EntityKind.HOST, "h1")
        plugin.on_host(ctx, host, [sample])
        out.extend(ctx.reported)
    return out


def test_n_of_m_fires_on_n_breaches_among_the_last_m() -> None:
    rule = WatermarkRule(name="r", meter="load", threshold=80, for_samples=3, of_samples=5)
    values = [90, 10, 90, 10, 10, 10, 90, 10, 90, 90]
    transitions = feed(WatermarkPlugin([rule]), [(float(i), v) for i, v in enumerate(values)])
    # breaches at 0, 2, 6, 8, 9: never 3 within 5 polls until t=9 (6, 8 and 9)
    assert [(t.current, t.time) for t in transitions] == [(AlarmState.ALARM, 9.0)]
    assert "in 3 of the last 5 poll(s)" in transitions[0].reason


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 4), st.integers(0, 4))
def test_n_of_m_matches_a_sliding_count(breaches: list[bool], n: int, extra: int) -> None:
    m = n + extra
    rule = WatermarkRule(
        name="r", meter="load", threshold=50, for_samples=n, of_samples=m, clear=0.0
    )  # never clears: only the first firing matters
    transitions = feed(
        WatermarkPlugin([rule]), [(float(i), 90.0 if b else 10.0) for i, b in enumerate(breaches)]
    )
    expected = next(
        (
            i
            for i in range(len(breaches))
            if breaches[i] and sum(breaches[max(0, i - m + 1) : i + 1]) >= n
        ),
        None,
    )
    assert [t.time for t in transitions] == ([] if expected is None else [float(expected)])


def test_for_seconds_needs_the_breach_to_last() -> None:
    rule = WatermarkRule(
        name="r", meter="load", threshold=80, for_seconds=120, clear_for_seconds=60
    )
    points = [
        (0, 90),
        (60, 90),
        (90, 10),
        (100, 90),
        (160, 90),
        (220, 90),
        (230, 10),
        (250, 10),
        (290, 10),
    ]
    transitions = feed(WatermarkPlugin([rule]), [(float(t), float(v)) for t, v in points])
    assert [(t.current, t.time) for t in transitions] == [
        (AlarmState.ALARM, 220.0),  # the interruption at 90 restarted the clock at 100
        (AlarmState.OK, 290.0),  # clear from 230 lasted 60 s at 290
    ]
    assert "over 120 s" in transitions[0].reason


def test_override_needs_exactly_one_target_and_for_seconds_no_window() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        WatermarkOverride(threshold=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        WatermarkOverride(instance="a", flavor="b")
    with pytest.raises(ValueError, match="for_seconds needs consecutive"):
        WatermarkRule(name="r", meter="m", threshold=1, for_samples=2, of_samples=3, for_seconds=5)
    with pytest.raises(ValueError, match="of_samples"):
        WatermarkRule(name="r", meter="m", threshold=1, for_samples=3, of_samples=2)
    with pytest.raises(ValueError, match="clear 9 must be at or below"):
        WatermarkRule(
            name="r",
            meter="m",
            threshold=5,
            overrides=[WatermarkOverride(flavor="f", threshold=5, clear=9)],
        )


def test_a_reload_keeps_state_only_for_rules_whose_identity_did_not_change() -> None:
    high = WatermarkRule(name="high", meter="load", threshold=80)
    other = WatermarkRule(name="other", meter="load", threshold=50)
    plugin = WatermarkPlugin([high, other])
    feed(plugin, [(0.0, 90.0)])
    assert plugin.state("high", "h1") == plugin.state("other", "h1") == AlarmState.ALARM
    plugin.replace_rules(
        [
            high.model_copy(update={"threshold": 85.0, "for_samples": 3}),  # same identity
            other.model_copy(update={"op": "<"}),  # a different condition: starts afresh
        ]
    )
    assert plugin.state("high", "h1") == AlarmState.ALARM
    assert plugin.state("other", "h1") == AlarmState.OK
    assert feed(plugin, [(1.0, 90.0)]) == []  # still in alarm: no new transition
