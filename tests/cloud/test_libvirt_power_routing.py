"""How the libvirt driver routes host power to a PowerControl: off is recorded
before the BMC is asked, on is recorded only once the BMC confirmed, repeats after
a crash are safe, and hosts without a BMC keep the clear refusal."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future

import pytest

from fakes.repositories import MemoryRepositories
from opendrs.cloud.libvirt_actions import LibvirtActions
from opendrs.domain.errors import DriverError
from opendrs.domain.host import Host, HostState
from opendrs.domain.power import PowerControl, PowerState


def no_launch(call: Callable[[], None]) -> Future[None]:
    raise AssertionError("no migration here")


class RecordingPower:
    """A PowerControl that notes each call with the host's recorded state then."""

    def __init__(self, states: MemoryRepositories, hosts: set[str]) -> None:
        self.states = states
        self.hosts = hosts
        self.power: dict[str, PowerState] = dict.fromkeys(hosts, PowerState.ON)
        self.calls: list[tuple[str, str, HostState]] = []
        self.fail: DriverError | None = None
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def controls(self, host: str) -> bool:
        return host in self.hosts

    def power_state(self, host: str) -> PowerState:
        return self.power[host]

    def _note(self, what: str, host: str) -> None:
        self.calls.append((what, host, self.states.get_host(host).state))
        if self.fail is not None:
            raise self.fail

    def power_on(self, host: str) -> None:
        self._note("on", host)
        self.power[host] = PowerState.ON

    def power_off(self, host: str, graceful: bool = True) -> None:
        self._note("off" if graceful else "force-off", host)
        self.power[host] = PowerState.OFF


def scene(
    state: HostState = HostState.MAINTENANCE, *, graceful: bool = True
) -> tuple[LibvirtActions, MemoryRepositories, RecordingPower]:
    states = MemoryRepositories()
    states.upsert_hosts([Host("h1", 8, 8192, state=state), Host("h2", 8, 8192, state=state)])
    power = RecordingPower(states, {"h1"})
    checked: PowerControl = power  # the fake must satisfy the port
    actions = LibvirtActions({}, states, launch=no_launch, power=checked, graceful_off=graceful)
    return actions, states, power


def test_power_off_is_recorded_before_the_bmc_is_asked() -> None:
    actions, states, power = scene()
    actions.set_host_state("h1", HostState.OFF, "consolidation")
    assert power.calls == [("off", "h1", HostState.OFF)]
    host = states.get_host("h1")
    assert (host.state, host.disabled_reason) == (HostState.OFF, "consolidation")


def test_power_off_can_be_forced() -> None:
    actions, _, power = scene(graceful=False)
    actions.set_host_state("h1", HostState.OFF)
    assert power.calls == [("force-off", "h1", HostState.OFF)]


def test_a_failed_power_off_leaves_the_host_recorded_off() -> None:
    # The host is empty and must take no work: a retry asks the BMC again.
    actions, states, power = scene()
    power.fail = DriverError("BMC of h1 (https://bmc): BMC unreachable", transient=True)
    with pytest.raises(DriverError, match="unreachable") as caught:
        actions.set_host_state("h1", HostState.OFF)
    assert caught.value.transient
    assert states.get_host("h1").state == HostState.OFF
    power.fail = None
    actions.set_host_state("h1", HostState.OFF)
    assert [call[0] for call in power.calls] == ["off", "off"]
    assert power.power["h1"] == PowerState.OFF


def test_power_on_is_recorded_only_after_the_bmc_confirmed() -> None:
    actions, states, power = scene(HostState.OFF)
    actions.set_host_state("h1", HostState.ENABLED)
    assert power.calls == [("on", "h1", HostState.OFF)]
    assert states.get_host("h1").state == HostState.ENABLED


def test_a_failed_power_on_leaves_the_host_off() -> None:
    actions, states, power = scene(HostState.OFF)
    power.fail = DriverError("BMC of h1: accepted ResetType On but PowerState is still Off")
    with pytest.raises(DriverError, match="still Off"):
        actions.set_host_state("h1", HostState.DISABLED)
    assert states.get_host("h1").state == HostState.OFF


def test_a_repeated_power_off_asks_the_bmc_again() -> None:
    # An applier resuming after a crash between the record and the BMC call.
    actions, states, power = scene(HostState.OFF)
    actions.set_host_state("h1", HostState.OFF, "consolidation")
    assert power.calls == [("off", "h1", HostState.OFF)]
    assert states.get_host("h1").disabled_reason == "consolidation"


def test_other_states_never_touch_the_bmc() -> None:
    actions, states, power = scene(HostState.ENABLED)
    actions.set_host_state("h1", HostState.MAINTENANCE, "disk swap")
    actions.set_host_state("h1", HostState.DISABLED)
    actions.set_host_state("h1", HostState.ENABLED)
    assert power.calls == []
    assert states.get_host("h1").state == HostState.ENABLED


@pytest.mark.parametrize(
    ("start", "wanted", "verb"),
    [(HostState.MAINTENANCE, HostState.OFF, "off"), (HostState.OFF, HostState.ENABLED, "on")],
)
def test_a_host_without_a_bmc_is_refused_clearly(
    start: HostState, wanted: HostState, verb: str
) -> None:
    actions, states, power = scene(start)
    with pytest.raises(DriverError) as caught:
        actions.set_host_state("h2", wanted)
    assert str(caught.value).startswith(f"cannot power h2 {verb}: libvirt has no power control")
    assert "power.hosts" in str(caught.value)
    assert states.get_host("h2").state == start
    assert power.calls == []


def test_without_a_power_driver_power_changes_are_refused() -> None:
    states = MemoryRepositories()
    states.upsert_hosts([Host("h1", 8, 8192)])
    actions = LibvirtActions({}, states, launch=no_launch)
    with pytest.raises(DriverError, match="no BMC is configured"):
        actions.set_host_state("h1", HostState.OFF)
    assert states.get_host("h1").state == HostState.ENABLED


def test_an_unknown_host_is_an_error() -> None:
    actions, _, power = scene()
    with pytest.raises(DriverError, match="unknown host 'nope'"):
        actions.set_host_state("nope", HostState.OFF)
    assert power.calls == []


def test_closing_the_driver_logs_out_of_the_bmcs() -> None:
    actions, _, power = scene()
    actions.close()
    assert power.closed
