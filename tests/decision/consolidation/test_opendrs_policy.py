"""opendrs' own policy: forecast sizing, hysteresis, anti-ping-pong, all-or-nothing
drains, relief of capped VMs and its initial packing."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from consolidation_builders import snapshot

from opendrs.decision.consolidation.opendrs_policy import OpendrsConsolidation
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState


def policy(**parameters: object) -> OpendrsConsolidation:
    return OpendrsConsolidation.from_parameters(parameters)


def test_vm_size_is_its_recent_peak_plus_margin_capped_by_its_mips() -> None:
    s = snapshot([5320.0], [(0, 1000.0, 200.0, 613.0)], [[0.2, 0.9, 0.3, 1.0]])
    assert policy(window=3, margin=0.0).sizes(s)[0][0] == pytest.approx(900.0)
    assert policy(window=3, margin=0.5).sizes(s)[0][0] == pytest.approx(1000.0)
    assert policy(window=1, margin=0.0).sizes(s)[0][0] == pytest.approx(200.0)
    # The window's variance, for the optional pooled headroom.
    variance = policy(window=2).sizes(s)[1][0]
    assert variance == pytest.approx(((200.0 - 550.0) ** 2 + (900.0 - 550.0) ** 2) / 2)


def test_pooled_headroom_refuses_a_vm_the_peaks_alone_would_accept() -> None:
    vms = [(0, 2000.0, 2000.0, 613.0), (1, 2000.0, 1500.0, 613.0)]
    history = [[1.0, 0.5], [0.75, 0.25]]
    s = snapshot([5320.0, 5320.0], vms, history)
    assert policy(drains_per_round=10).execute_snapshot(s).moves
    assert not policy(drains_per_round=10, confidence=3.0).execute_snapshot(s).moves


def test_hysteresis_leaves_a_full_but_not_overloaded_host_alone() -> None:
    # 96 % of the host requested: above `fill` (0.95) but below `trigger` (1.0).
    vms = [(0, 2660.0, 2554.0, 1740.0), (0, 2660.0, 2554.0, 1740.0)]
    s = snapshot([5320.0, 5320.0], vms, [[0.96], [0.96]], memory=[8192.0, 8192.0])
    solution = policy(drains_per_round=0).execute_snapshot(s)
    assert solution.moves == ()


def test_overloaded_host_is_relieved_onto_a_running_host() -> None:
    vms = [
        (0, 2660.0, 2660.0, 1740.0),
        (0, 2660.0, 2660.0, 870.0),
        (0, 1000.0, 600.0, 613.0),
        (1, 1000.0, 500.0, 613.0),
    ]
    s = snapshot([5320.0, 5320.0, 5320.0], vms, [[1.0], [1.0], [0.6], [0.5]])
    solution = policy(drains_per_round=0).execute_snapshot(s)
    assert [m.source for m in solution.moves] == ["h0"]
    assert solution.moves[0].destination == "h1"  # busy host preferred to waking h2


def test_capped_vm_moves_to_a_host_with_big_enough_cores() -> None:
    # A 2500-MIPS VM asking 2000 on a G4 (1860-MIPS cores) is short whatever the total.
    s = snapshot([3720.0, 5320.0], [(0, 2500.0, 2000.0, 870.0)], [[0.8]])
    solution = policy().execute_snapshot(s)
    assert [(m.source, m.destination) for m in solution.moves] == [("h0", "h1")]


def test_light_hosts_are_drained_all_or_nothing() -> None:
    vms = [(0, 1000.0, 200.0, 613.0), (1, 1000.0, 300.0, 613.0), (2, 2000.0, 1000.0, 870.0)]
    s = snapshot([5320.0] * 3, vms, [[0.2], [0.3], [0.5]])
    solution = policy().execute_snapshot(s)
    sources = {m.source for m in solution.moves}
    assert "h0" in sources and len(solution.moves) >= 1
    destinations = {m.destination for m in solution.moves}
    assert not sources & destinations  # nothing moves onto a host being emptied


def test_recently_moved_vms_are_not_moved_again_to_consolidate() -> None:
    vms = [(0, 1000.0, 200.0, 613.0), (1, 1000.0, 300.0, 613.0)]
    recent = snapshot([5320.0] * 2, vms, [[0.2], [0.3]], moved_at=[3000.0, 3000.0], now=3600.0)
    assert policy(cooldown=3600.0).execute_snapshot(recent).moves == ()
    settled = snapshot([5320.0] * 2, vms, [[0.2], [0.3]], moved_at=[0.0, 0.0], now=3600.0)
    assert len(policy(cooldown=3600.0).execute_snapshot(settled).moves) == 1


def test_power_changes_switch_emptied_hosts_off() -> None:
    vms = [(0, 1000.0, 200.0, 613.0), (1, 1000.0, 300.0, 613.0)]
    s = snapshot([5320.0] * 3, vms, [[0.2], [0.3]], on=[True, True, False])
    solution = policy(power_changes=True).execute_snapshot(s)
    offs = [c for c in solution.host_changes if c.state == HostState.OFF]
    assert len(offs) == 1 and offs[0].host in {m.source for m in solution.moves}


def test_initial_placement_packs_by_expected_share_and_memory() -> None:
    vms = [(0, 1000.0, 1000.0, 1740.0)] * 4
    s = snapshot([5320.0] * 4, vms, memory=[4096.0] * 4)
    # At creation nothing is booked yet and CPU is overcommitted (realistic profile).
    s = replace(s, host_free_mips=np.full(4, np.inf), host_used_mips=np.zeros(4))
    hosts = policy(initial_share=0.3).initial_placement(s)
    assert hosts is not None
    counts = np.bincount(hosts, minlength=4)
    assert sorted(counts.tolist()) == [0, 0, 2, 2]  # two 1740-MB VMs per 4096-MB host


@pytest.mark.parametrize(
    "bad", [{"window": 0}, {"fill": 1.5}, {"drain_below": 1.0}, {"cooldown": -1}, {"x": 1}]
)
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        OpendrsConsolidation.from_parameters(bad)
