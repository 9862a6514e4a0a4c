"""Host files in a directory: one call per host writes all its series, reads
return any series of any host as one matrix on a common grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from opendrs.domain.errors import InvalidInput, NotFound
from opendrs.store.rrd.collection import HostArchives, default_source
from opendrs.store.rrd.definition import SourceType

BASE = 1_700_000_000 - 1_700_000_000 % 300


def test_hosts_are_written_and_read_as_one_matrix(tmp_path: Path) -> None:
    with HostArchives(tmp_path) as archives:
        for i in range(1, 13):
            when = BASE + 300 * i
            archives.update("h1", when, {"vm1/cpu_util": 10.0 * (i % 5), "h1/power": 100 + i})
            archives.update("h2", when, {"vm2/cpu_util": 50.0, "vm2/disk.read.bytes": 4096 * i})
        matrix = archives.read("AVERAGE", BASE + 300 * 6, BASE + 300 * 12)
        assert matrix.keys == (
            ("h1", "vm1/cpu_util"),
            ("h1", "h1/power"),
            ("h2", "vm2/cpu_util"),
            ("h2", "vm2/disk.read.bytes"),
        )
        assert matrix.step == 300
        assert list(matrix.timestamps[:6]) == [BASE + 300 * k for k in range(7, 13)]
        assert matrix.values[:5, 2].tolist() == [50.0] * 5
        assert np.allclose(matrix.values[:5, 3], 4096 / 300)  # bytes → B/s
        picked = archives.read(
            "MAX", BASE, BASE + 300 * 12, series=[("h2", "vm2/cpu_util"), ("h1", "h1/power")]
        )
        assert picked.keys == (("h2", "vm2/cpu_util"), ("h1", "h1/power"))


def test_gone_series_are_retired_and_new_ones_added(tmp_path: Path) -> None:
    with HostArchives(tmp_path) as archives:
        archives.update("h1", BASE + 300, {"vm1/cpu_util": 1.0, "vm2/cpu_util": 2.0})
        archives.update("h1", BASE + 600, {"vm2/cpu_util": 2.0, "vm3/cpu_util": 3.0},
                        retire_missing=True)  # fmt: skip
        handle = archives.file("h1")
        assert handle.columns == ["vm2/cpu_util", "vm3/cpu_util"]
        assert handle.retired == ["vm1/cpu_util"]


def test_meters_choose_their_data_source_type() -> None:
    assert default_source("vm/cpu_util").type is SourceType.GAUGE
    assert default_source("vm/cpu_util").max == 100.0
    assert default_source("vm/network.incoming.bytes").type is SourceType.DERIVE
    assert default_source("vm/memory.usage").type is SourceType.GAUGE


def test_bad_host_names_and_unknown_hosts(tmp_path: Path) -> None:
    with HostArchives(tmp_path) as archives:
        with pytest.raises(InvalidInput, match="host name"):
            archives.update("../etc", BASE, {"x": 1.0})
        with pytest.raises(NotFound, match="nowhere"):
            archives.read("AVERAGE", BASE, BASE + 600, hosts=["nowhere"])


def test_recorder_is_the_agents_history_port(tmp_path: Path) -> None:
    from opendrs.domain.sample import EntityKind, Sample, SampleType
    from opendrs.store.rrd.collection import HostRecorder, split_series

    def sample(meter: str, value: float, unit: str, kind: SampleType, **labels: str) -> Sample:
        return Sample(meter, "vm1", value, unit, kind, 0.0, EntityKind.INSTANCE, "h1", labels)

    with HostArchives(tmp_path) as archives:
        recorder = HostRecorder(archives, "h1")
        for i in range(1, 6):
            recorder.record(
                BASE + 300 * i,
                [
                    sample("cpu_util", 10.0 * i, "%", SampleType.GAUGE),
                    sample("disk.device.read.bytes.rate", 100.0, "B/s", SampleType.GAUGE,
                           device="vda"),
                    sample("cpu", 1e9 * 300 * i, "ns", SampleType.CUMULATIVE),
                ],
            )  # fmt: skip
        handle = archives.file("h1")
        assert handle.columns == ["vm1/cpu_util", "vm1/disk.device.read.bytes.rate/vda", "vm1/cpu"]
        kinds = {s.name: (s.type, s.max) for s in handle.sources()}
        assert kinds["vm1/cpu_util"] == (SourceType.GAUGE, 100.0)
        assert kinds["vm1/cpu"][0] is SourceType.DERIVE
        assert split_series("vm1/disk.device.read.bytes.rate/vda") == (
            "vm1", "disk.device.read.bytes.rate", "vda",
        )  # fmt: skip
        fetched = handle.fetch("AVERAGE", BASE + 300, BASE + 300 * 5)
        assert fetched.values[2].tolist() == [40.0, 100.0, 1e9]
        with pytest.raises(InvalidInput, match="host name"):
            HostRecorder(archives, "a/b")
