"""build_sim_cloud: the simulated cloud made from settings and the real traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.cloud.sim import build_sim_cloud
from opendrs.cloud.sim.traces import find_trace_dir
from opendrs.config import SimSettings
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput


def trace_dir() -> Path:
    """The PlanetLab traces, found as the demo finds them (an error if they are missing)."""
    return find_trace_dir(None)


def test_default_settings_make_a_valid_deterministic_cloud() -> None:
    settings = SimSettings()
    first = build_sim_cloud(settings, ManualClock(), trace_dir())
    again = build_sim_cloud(settings, ManualClock(), trace_dir())
    assert first.list_hosts() == again.list_hosts()
    assert first.list_instances() == again.list_instances()
    hosts = first.list_hosts()
    assert len(hosts) == settings.hosts
    assert first.instance_count() == 100
    assert all(h.running_vms > 0 for h in hosts)  # spread over every host
    for h in hosts:
        assert h.vcpus_used <= h.vcpus * h.cpu_allocation_ratio
        assert h.memory_mb_used <= h.memory_mb * h.ram_allocation_ratio
    traces = {i.metadata["trace"] for i in first.list_instances()}
    assert len(traces) == 100


def test_seed_changes_the_cloud() -> None:
    a = build_sim_cloud(SimSettings(seed=1), ManualClock(), trace_dir())
    b = build_sim_cloud(SimSettings(seed=2), ManualClock(), trace_dir())
    assert [i.host for i in a.list_instances()] != [i.host for i in b.list_instances()]


def test_a_day_of_the_default_cloud() -> None:
    clock = ManualClock()
    settings = SimSettings()
    cloud = build_sim_cloud(settings, clock, trace_dir())
    clock.set(86400)
    kwh = cloud.energy_joules / 3.6e6
    # every host draws between 93.7 W and 135 W for 24 h
    n = settings.hosts
    assert n * 93.7 * 24 / 1000 < kwh < n * 135 * 24 / 1000
    assert all(0 <= cloud.host_utilisation(h.name) <= 1 for h in cloud.list_hosts())


def test_unknown_day_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no trace file") as err:
        build_sim_cloud(SimSettings(day="19990101"), ManualClock(), tmp_path)
    assert err.value.source.endswith("19990101.csv.gz")


def test_too_many_instances_names_the_day() -> None:
    with pytest.raises(InvalidInput, match="5000 traces asked") as err:
        build_sim_cloud(SimSettings(instances=5000), ManualClock(), trace_dir())
    assert "20110303.csv.gz" in err.value.source
