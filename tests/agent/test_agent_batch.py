"""The poll as a batch: sample rows with Samples made on demand, the `on_batch`
hook in place of the per-instance hooks, and the built-in plugins giving the
same results through it as through the hooks."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from opendrs.agent.batch import PollBatch, SampleBatch, rows_of
from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import PollContext, PollResult, QuietHooks
from opendrs.agent.plugins.statsd import StatsdPlugin
from opendrs.agent.plugins.watermark import WatermarkPlugin
from opendrs.agent.poller import Agent
from opendrs.config import StatsdSettings, WatermarkOverride, WatermarkRule
from opendrs.domain.alarm import AlarmState, AlarmTransition
from opendrs.domain.clock import ManualClock
from opendrs.domain.counters import DeviceBytes, HostCounters, InstanceCounters
from opendrs.domain.sample import EntityKind, Sample, SampleType


def sample(entity: str, value: float, **labels: str) -> Sample:
    return Sample("cpu_util", entity, value, "%", SampleType.GAUGE, 5.0, labels=labels)


def test_a_sample_batch_is_a_sequence_of_samples_made_from_its_rows() -> None:
    samples = (sample("a", 1.0), sample("b", 2.0, device="vda"))
    batch = SampleBatch(rows_of(samples))
    assert len(batch) == 2
    assert batch == samples and list(batch) == list(samples)
    assert batch[1] == samples[1] and batch[-1:] == samples[-1:]
    assert rows_of(batch) is batch.rows
    assert batch != (samples[0],)


class Loads:
    """Instances whose cpu, bandwidth and the host's free memory follow `loads`."""

    def __init__(self, clock: ManualClock, loads: list[tuple[float, float, float]]) -> None:
        self.clock = clock
        self.loads = loads
        self.step = 0
        self.cpu = [0.0, 0.0]
        self.net = [0.0, 0.0]

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        t = self.clock.now()
        cpu, net, _ = self.loads[min(self.step, len(self.loads) - 1)]
        out = []
        for i, name in enumerate(("vm-a", "vm-b")):
            self.cpu[i] += cpu * 60e9 * (i + 1) / 2
            self.net[i] += net * 60 / 8 * (i + 1)
            out.append(
                InstanceCounters(
                    name,
                    t,
                    1,
                    int(self.cpu[i]),
                    1024,
                    512.0,
                    disks={"vda": DeviceBytes(int(t), int(t))},
                    interfaces={"tap0": DeviceBytes(int(self.net[i]), int(self.net[i]))},
                    flavor="small" if i else "large",
                    metadata={"qos.outbound_bps.tap0": "5e9"} if i else {},
                )
            )
        return out

    def host_counters(self, host: str) -> HostCounters:
        _, _, free = self.loads[min(self.step, len(self.loads) - 1)]
        return HostCounters(host, self.clock.now(), 4, int(self.clock.now() * 1e9), 1000, free)


RULES = [
    WatermarkRule(
        name="cpu", meter="cpu_util", entity="instance", threshold=90.0, clear=50.0, for_samples=2
    ),
    WatermarkRule(
        name="net",
        meter="network.outgoing.bytes.rate",
        entity="instance",
        scale=8,
        threshold=20e9,
        threshold_metadata="qos.outbound_bps.{interface}",
        overrides=[WatermarkOverride(flavor="large", threshold=1e9)],
    ),
    WatermarkRule(name="ram", meter="memory.free", op="<", threshold=150.0, clear=200.0),
]


class HookByHook(WatermarkPlugin):
    """The same plugin taking the poll hook by hook (no batch hook)."""

    on_batch = QuietHooks.on_batch  # type: ignore[assignment]


def transitions(plugin: WatermarkPlugin, loads: list[tuple[float, float, float]]) -> list[str]:
    clock = ManualClock(60.0)
    stats = Loads(clock, loads)
    agent = Agent("h1", stats, PluginPipeline([plugin]), clock)
    out: list[str] = []
    for step in range(len(loads)):
        stats.step = step
        clock.set(60.0 * (step + 1))
        result = agent.poll_once()
        out.extend(_text(t) for t in result.transitions)
    return out


def _text(t: AlarmTransition) -> str:
    return f"{t.rule} {t.entity} {t.current} {t.time} {t.value} {sorted(t.labels.items())}"


@settings(deadline=None, max_examples=40)
@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 40e9), st.floats(0.0, 1000.0)),
        min_size=1,
        max_size=8,
    )
)
def test_the_watermark_reports_the_same_through_the_batch_hook_as_hook_by_hook(
    loads: list[tuple[float, float, float]],
) -> None:
    assert transitions(WatermarkPlugin(RULES), loads) == transitions(HookByHook(RULES), loads)


def test_the_batch_hook_catches_the_three_cases_of_the_issue() -> None:
    fired = transitions(WatermarkPlugin(RULES), [(1.0, 30e9, 100.0)] * 3)
    assert any(t.startswith("cpu vm-b alarm") for t in fired)  # 100% of its vCPU
    assert any(t.startswith("net vm-b alarm") for t in fired)  # 5 Gb/s limit from metadata
    assert any(t.startswith("ram h1 alarm") for t in fired)  # host free RAM below 15%


class Batched(QuietHooks):
    def __init__(self, fail: bool = False) -> None:
        self.name = "batched"
        self.fail = fail
        self.batches: list[PollBatch] = []
        self.hook_calls = 0

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.hook_calls += 1

    def on_batch(self, ctx: PollContext, batch: PollBatch) -> None:
        self.batches.append(batch)
        ctx.report(AlarmTransition("r", "e", AlarmState.OK, AlarmState.ALARM, ctx.time, 1.0))
        if self.fail:
            raise RuntimeError("boom")


def test_a_plugin_with_a_batch_hook_gets_the_whole_poll_in_one_call() -> None:
    clock = ManualClock(60.0)
    plugin = Batched()
    agent = Agent("h1", Loads(clock, [(0.5, 1e6, 500.0)]), PluginPipeline([plugin]), clock)
    result = agent.poll_once()
    (batch,) = plugin.batches
    assert plugin.hook_calls == 0  # the batch hook replaces the others
    assert set(batch.instances) == {"vm-a", "vm-b"} and batch.host is not None
    assert [Sample(*row) for row in batch.rows] == list(result.samples)
    assert batch.rows[-1][6] is EntityKind.HOST  # the host's samples come last
    assert [t.rule for t in result.transitions] == ["r"]


def test_a_failing_batch_hook_is_isolated_and_its_reports_dropped() -> None:
    clock = ManualClock(60.0)
    plugin = Batched(fail=True)
    pipeline = PluginPipeline([plugin], failures_before_disable=2)
    agent = Agent("h1", Loads(clock, [(0.5, 1e6, 500.0)]), pipeline, clock)
    first = agent.poll_once()
    assert first.transitions == () and "plugin batched failed" in first.errors
    clock.advance(60.0)
    agent.poll_once()
    assert pipeline.disabled == ["batched"]


@given(st.lists(st.text(alphabet="abc.:|", min_size=1, max_size=40), max_size=60))
def test_statsd_packets_keep_every_line_that_fits_in_order_within_the_limit(
    lines: list[str],
) -> None:
    plugin = StatsdPlugin(StatsdSettings(max_packet=64))
    packets = plugin.packets(lines)
    assert all(0 < len(p) <= 64 for p in packets)
    kept = [line for line in lines if len(line.encode()) <= 64]
    assert [line for p in packets for line in p.decode().split("\n")] == kept
    assert plugin.lines_too_long == len(lines) - len(kept)


def test_poll_results_built_by_hand_still_take_tuples() -> None:
    result = PollResult((sample("a", 1.0),), ())
    assert rows_of(result.samples)[0][:3] == ("cpu_util", "a", 1.0)


class Protocolled:
    """A plugin written to MetricPlugin without QuietHooks: no batch hook at all."""

    name = "protocolled"

    def __init__(self) -> None:
        self.cpu_calls = 0

    def on_cpu(
        self, ctx: PollContext, instance: InstanceCounters, samples: Sequence[Sample]
    ) -> None:
        self.cpu_calls += 1

    on_ram = on_disk = on_volume = on_bandwidth = on_cpu

    def on_host(self, ctx: PollContext, host: HostCounters, samples: Sequence[Sample]) -> None:
        return None

    def on_poll_done(self, result: PollResult) -> None:
        return None


def test_a_plugin_without_a_batch_hook_gets_the_hooks() -> None:
    clock = ManualClock(60.0)
    plugin = Protocolled()
    agent = Agent("h1", Loads(clock, [(0.5, 1e6, 500.0)]), PluginPipeline([plugin]), clock)
    assert agent.poll_once().errors == ()
    assert plugin.cpu_calls == 2 * 4  # cpu, ram, disk and bandwidth of two instances


class ChangingLimits(Loads):
    """As Loads, with vm-b's bandwidth limit in its metadata changing poll by poll
    while the host's layout stays the same."""

    def __init__(self, clock: ManualClock, loads: list[tuple[float, float, float]]) -> None:
        super().__init__(clock, loads)
        self.limits = ["5e9", "5e9", "50e9", "50e9", "5e9", "5e9", "5e9"]

    def instance_counters(self, host: str) -> list[InstanceCounters]:
        found = super().instance_counters(host)
        limit = self.limits[min(self.step, len(self.limits) - 1)]
        b = found[1]
        found[1] = InstanceCounters(
            b.instance,
            b.time,
            b.vcpus,
            b.cpu_time_ns,
            b.memory_mb,
            b.memory_used_mb,
            b.disks,
            b.interfaces,
            flavor=b.flavor,
            metadata={"qos.outbound_bps.tap0": limit},
        )
        return found


def test_the_batch_hook_follows_limits_that_change_while_the_layout_stays() -> None:
    def run(plugin: WatermarkPlugin) -> list[str]:
        clock = ManualClock(60.0)
        stats = ChangingLimits(clock, [(0.1, 15e9, 900.0)] * 7)  # vm-b: 30 Gb/s
        agent = Agent("h1", stats, PluginPipeline([plugin]), clock)
        out = []
        for step in range(7):
            stats.step = step
            clock.set(60.0 * (step + 1))
            out.extend(_text(t) for t in agent.poll_once().transitions)
        return out

    fired = run(WatermarkPlugin(RULES))
    assert fired == run(HookByHook(RULES))
    # 30 Gb/s against 5e9 fires, against 50e9 clears, then fires again
    assert [t.split()[:3] for t in fired if t.startswith("net vm-b")] == [
        ["net", "vm-b", "alarm"],
        ["net", "vm-b", "ok"],
        ["net", "vm-b", "alarm"],
    ]
