"""What opendrs reads back of Nova is what it wrote: a host state set through
NovaActions (the nova-compute service's status and disabled reason) reads back as
the same state; a service that is down takes no work."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from opendrs.cloud.nova_reading import host_state
from opendrs.cloud.openstack import NovaActions
from opendrs.domain.host import HostState


class ServiceTable:
    """Nova's os-services as far as NovaActions writes them: one service per host."""

    def __init__(self) -> None:
        self.service = SimpleNamespace(
            host="c1", status="enabled", state="up", disabled_reason=None, is_forced_down=False
        )

    def services(self, **_: Any) -> list[Any]:
        return [self.service]

    def enable_service(self, service: Any) -> None:
        service.status, service.disabled_reason = "enabled", None

    def disable_service(self, service: Any, disabled_reason: str) -> None:
        service.status, service.disabled_reason = "disabled", disabled_reason


reasons = st.one_of(
    st.none(),
    st.text(max_size=40).filter(lambda r: "maintenance" not in r),
)


@given(
    state=st.sampled_from([HostState.ENABLED, HostState.DISABLED, HostState.MAINTENANCE]),
    reason=reasons,
)
def test_a_state_written_through_nova_reads_back_the_same(
    state: HostState, reason: str | None
) -> None:
    table = ServiceTable()
    NovaActions(SimpleNamespace(compute=table)).set_host_state("c1", state, reason)
    read, why = host_state(table.service)
    assert read == state
    if state == HostState.ENABLED:
        assert why is None
    else:
        assert why and (reason is None or reason in why)


@given(status=st.sampled_from(["enabled", "disabled"]), forced=st.booleans())
def test_a_service_that_is_down_takes_no_work(status: str, forced: bool) -> None:
    service = SimpleNamespace(
        status=status, state="down", disabled_reason=None, is_forced_down=forced
    )
    assert host_state(service)[0] == HostState.DISABLED
