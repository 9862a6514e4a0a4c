"""The history plugin hands each poll's gauges to the HostHistory port."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from opendrs.agent.pipeline import PluginPipeline
from opendrs.agent.plugin import PollResult
from opendrs.agent.plugins.history import HistoryPlugin, series_key
from opendrs.domain.errors import StoreError
from opendrs.domain.sample import EntityKind, Sample, SampleType


class Recorded:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[float, list[Sample]]] = []
        self.fail = fail

    def record(self, time: float, samples: Sequence[Sample]) -> None:
        if self.fail:
            raise StoreError("disk full")
        self.calls.append((time, list(samples)))


def sample(meter: str, kind: SampleType, **labels: str) -> Sample:
    return Sample(meter, "vm", 1.0, "", kind, 9.0, EntityKind.INSTANCE, "h", labels)


SAMPLES = (
    sample("cpu", SampleType.CUMULATIVE),
    sample("cpu_util", SampleType.GAUGE),
    sample("disk.device.read.bytes.rate", SampleType.GAUGE, device="vda"),
)


def test_gauges_of_a_poll_are_recorded_at_the_poll_time() -> None:
    store = Recorded()
    plugin = HistoryPlugin(store)
    plugin.on_poll_done(PollResult(SAMPLES, (), "h", 10.0))
    [(time, kept)] = store.calls
    assert time == 10.0
    assert [series_key(s) for s in kept] == ["vm/cpu_util", "vm/disk.device.read.bytes.rate/vda"]
    assert plugin.recorded == 2


def test_meters_choose_what_is_kept_and_nothing_means_no_call() -> None:
    store = Recorded()
    plugin = HistoryPlugin(store, meters=["cpu"])
    plugin.on_poll_done(PollResult(SAMPLES, (), "h", 10.0))
    assert [s.meter for s in store.calls[0][1]] == ["cpu"]
    plugin.on_poll_done(PollResult((), (), "h", 20.0))
    assert len(store.calls) == 1


def test_a_failing_store_is_isolated_by_the_pipeline() -> None:
    plugin = HistoryPlugin(Recorded(fail=True))
    run = PluginPipeline([plugin], failures_before_disable=1).begin("h", 1.0)
    result = run.finish(list(SAMPLES))
    assert result.errors == ("plugin history failed",)
    with pytest.raises(StoreError):
        plugin.on_poll_done(PollResult(SAMPLES, ()))
