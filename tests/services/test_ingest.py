"""SampleIngest: latest values into the cluster model, one write per flush; a
failed write keeps what it held for the next flush, values that arrived since win."""

from __future__ import annotations

from typing import Any

from fakes.repositories import MemoryRepositories
from opendrs.bus import codec, subjects
from opendrs.bus.memory import MemoryBus
from opendrs.domain.host import Host
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.services.ingest import SampleIngest


def cpu(value: float, time: float, meter: str = "compute.node.cpu.percent") -> Sample:
    return Sample(meter, "h1", value, "%", SampleType.GAUGE, time, EntityKind.HOST, "h1")


def publish(bus: MemoryBus, *samples: Sample) -> None:
    bus.publish(f"{subjects.SAMPLES}.0", codec.samples_event(samples, source="t", time=0.0))


def test_a_failed_write_is_retried_with_the_newer_values_winning() -> None:
    bus, store = MemoryBus(), MemoryRepositories()
    store.upsert_hosts([Host("h1", vcpus=8, memory_mb=16384)])
    ingest = SampleIngest(bus, store)
    ingest.start()
    publish(bus, cpu(40.0, 1.0), cpu(7.0, 1.0, "compute.node.memory.free.percent"))
    real = store.update_many_metrics

    def down(latest: Any) -> None:
        raise RuntimeError("database is locked")

    store.update_many_metrics = down  # type: ignore[method-assign]
    ingest.flush()
    assert ingest.flush_failures == 1
    publish(bus, cpu(55.0, 2.0))
    store.update_many_metrics = real  # type: ignore[method-assign]
    ingest.flush()
    assert store.get_host("h1").metrics == {
        "compute.node.cpu.percent": 55.0,
        "compute.node.memory.free.percent": 7.0,
    }
    ingest.stop()
