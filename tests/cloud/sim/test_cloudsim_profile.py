"""The cloudsim/realistic data centre: fleet, first fit, demand, deletion of idle VMs,
CPU sharing, migration accounting, energy and the CloudActions adapter."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from opendrs.cloud.sim.cloudsim.driver import DataCentreActions
from opendrs.cloud.sim.cloudsim.engine import CLOUDSIM, REALISTIC, DataCentre, _Sample
from opendrs.cloud.sim.cloudsim.hardware import build_fleet, vm_types
from opendrs.cloud.sim.cloudsim.initial import first_fit
from opendrs.cloud.sim.traces import load_day
from opendrs.decision.consolidation.snapshot import power_at
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import OperationState
from opendrs.services.simulation import run_day, trace_dir


def flat_traces(values: list[float], steps: int = 289) -> np.ndarray:
    return np.array([[v] * steps for v in values])


def test_hosts_alternate_g4_g5_and_vm_types_come_in_four_blocks() -> None:
    fleet = build_fleet(4, tuple(f"v{i}" for i in range(8)))
    assert fleet.host_pe_mips.tolist() == [1860.0, 2660.0, 1860.0, 2660.0]
    assert fleet.host_mips.tolist() == [3720.0, 5320.0, 3720.0, 5320.0]
    assert collections.Counter(vm_types(898).tolist()) == {0: 225, 1: 225, 2: 225, 3: 223}
    assert fleet.vm_mips.tolist() == [2500.0, 2500.0, 2000.0, 2000.0, 1000.0, 1000.0, 500.0, 500.0]
    assert fleet.vm_memory_mb.tolist()[::2] == [870.0, 1740.0, 1740.0, 613.0]


def test_first_fit_on_20110303_matches_cloudsim() -> None:
    names = tuple(t.name for t in load_day(trace_dir(), "20110303"))
    hosts = first_fit(build_fleet(800, names))
    used = np.unique(hosts)
    assert len(used) == 414 and int((used % 2 == 0).sum()) == 151
    sizes = collections.Counter(collections.Counter(hosts.tolist()).values())
    assert sizes == {2: 245, 3: 150, 4: 1, 6: 18}


def test_demand_at_an_update_is_one_3000th_towards_the_next_sample() -> None:
    traces = np.array([[0.0, 0.3, 0.6] + [0.6] * 286])
    centre = DataCentre(build_fleet(2, ("a",)), traces, CLOUDSIM)
    assert centre.demand_at(300.1)[0] == pytest.approx((0.3 + 0.3 / 3000) * 2500)


def test_vms_are_deleted_once_two_samples_in_a_row_are_zero() -> None:
    traces = np.array([[0.5, 0.0, 0.2] + [0.0] * 286, [0.5] * 289])
    centre = DataCentre(build_fleet(2, ("a", "b")), traces, CLOUDSIM)
    centre.place(np.array([1, 1]))
    centre.step(1)  # samples 1 and 2 are 0 and 0.2: demand > 0
    assert centre.vm_alive.all()
    centre.step(3)
    assert centre.vm_alive.tolist() == [False, True]
    kept = DataCentre(build_fleet(2, ("a", "b")), traces, REALISTIC)
    kept.place(np.array([1, 1]))
    kept.step(3)
    assert kept.vm_alive.all()


def test_requests_above_capacity_are_scaled_down_and_count_as_violation() -> None:
    # Three 2000-MIPS VMs at full demand on a 3720-MIPS G4: each capped to 1860, scaled.
    fleet = build_fleet(1, ("a", "b", "c"))
    traces = np.vstack([flat_traces([1.0] * 3)])
    fleet_mips = fleet.vm_mips.copy()
    assert fleet_mips[0] == 2500.0
    centre = DataCentre(fleet, traces, CLOUDSIM)
    centre.place(np.array([0, 0, 0]))
    centre.step(1)
    centre.step(2)
    t = centre.totals
    assert t.violation_seconds == pytest.approx(t.active_seconds)
    assert centre._last is not None
    assert centre._last.host_alloc[0] <= 3720.0


def test_migration_takes_ram_over_62_5_mb_s_with_90_10_accounting() -> None:
    fleet = build_fleet(2, ("a", "b", "c", "d"))  # VM 2 is type 2: 1000 MIPS, 1740 MB
    traces = flat_traces([0.0, 0.0, 0.5, 0.0])
    centre = DataCentre(fleet, traces, CLOUDSIM)
    centre.place(np.array([-1, -1, 0, -1]))
    actions = DataCentreActions(centre)
    centre.step(1)
    operation = actions.start_migration("c", "host-00001")
    centre.record_migration_starts()
    assert actions.operation(operation).state == OperationState.RUNNING
    assert actions.locate("c") == "host-00000"
    centre.complete_migrations(599.0)
    assert centre.now == pytest.approx(300.1 + 1740 / 62.5)
    assert actions.operation(operation).state == OperationState.SUCCEEDED
    assert actions.locate("c") == "host-00001"
    t = centre.totals
    assert t.migrations == 1
    assert t.migration_loss_mi == pytest.approx(0.1 * 500.0 * 1740 / 62.5)
    # The destination counted as short of MIPS for the whole copy.
    assert t.violation_seconds == pytest.approx(1740 / 62.5)


def test_energy_is_trapezoidal_and_an_idle_host_costs_nothing() -> None:
    fleet = build_fleet(2, ("a",))
    traces = np.array([[0.0] + [0.744] * 288])  # 1860 MIPS: 50 % of a G4
    centre = DataCentre(fleet, traces, CLOUDSIM)
    centre.place(np.array([0]))
    centre.step(1)
    assert centre.totals.energy_j == 0.0  # the first interval starts from u = 0
    centre.step(2)
    assert centre.totals.energy_j == pytest.approx(102.0 * 300.0)


def test_realistic_hosts_that_are_on_cost_idle_power_and_booting_costs_peak() -> None:
    fleet = build_fleet(2, ("a",))
    traces = np.array([[0.0] * 289])
    centre = DataCentre(fleet, traces, REALISTIC)
    centre.place(np.array([0]))
    actions = DataCentreActions(centre)
    centre.step(1)
    actions.set_host_state("host-00001", HostState.ENABLED)
    centre.step(2)
    assert centre.totals.energy_j == pytest.approx(86.0 * 300.0 + 135.0 * 120.0 + 93.7 * 180.0)
    with pytest.raises(DriverError):
        actions.set_host_state("host-00000", HostState.OFF)  # it still holds a VM
    actions.set_host_state("host-00001", HostState.OFF)
    assert not centre.host_on[1]


def test_driver_names_what_is_wrong() -> None:
    centre = DataCentre(build_fleet(2, ("a",)), flat_traces([0.5]), CLOUDSIM)
    centre.place(np.array([0]))
    actions = DataCentreActions(centre)
    with pytest.raises(DriverError, match="no such instance"):
        actions.start_migration("zz", "host-00001")
    with pytest.raises(DriverError, match="no such host"):
        actions.start_migration("a", "nowhere")
    with pytest.raises(DriverError, match="already on"):
        actions.start_migration("a", "host-00000")
    with pytest.raises(DriverError, match="unknown operation"):
        actions.operation("nope")


@pytest.mark.parametrize("profile", ["cloudsim", "realistic"])
def test_each_samples_watts_are_worked_out_once_with_the_same_energy(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sample ends one interval and starts the next: its watts are kept from the
    first to the second. Working them out afresh each time gives the same joules."""
    kept = run_day("20110303", "thr-mmt-0.8", profile, hosts=60, vms=80, steps=24).centre.totals

    def afresh(self: DataCentre, sample: _Sample) -> np.ndarray:
        hosts = np.arange(self.fleet.hosts)
        return power_at(self.fleet.host_power, hosts, sample.utilisation)

    monkeypatch.setattr(DataCentre, "_watts", afresh)
    again = run_day("20110303", "thr-mmt-0.8", profile, hosts=60, vms=80, steps=24).centre.totals
    assert kept.energy_j > 0.0
    assert kept == again  # every total, the energy to the last bit
