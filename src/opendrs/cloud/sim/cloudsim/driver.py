"""The data centre seen through the CloudActions port, so the real applier drives it:
migrations are operations that finish in simulated time; host state changes switch
hosts on (booting) and off under the realistic profile."""

from __future__ import annotations

import itertools

from opendrs.cloud.sim.cloudsim.engine import DataCentre
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import Operation, OperationState


class DataCentreActions:
    def __init__(self, centre: DataCentre) -> None:
        self._centre = centre
        self._operations: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.host_states: dict[str, HostState] = {}

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        c = self._centre
        vm, host = c.vm_index(instance), c.host_index(destination)
        c.begin_migration(vm, host)
        operation = f"migration-{next(self._ids)}"
        self._operations[operation] = vm
        return operation

    def operation(self, operation_id: str) -> Operation:
        vm = self._operations.get(operation_id)
        if vm is None:
            raise DriverError(f"unknown operation {operation_id!r}")
        running = self._centre.vm_dest[vm] >= 0
        state = OperationState.RUNNING if running else OperationState.SUCCEEDED
        if not running:
            del self._operations[operation_id]
        return Operation(operation_id, state)

    def locate(self, instance: str) -> str | None:
        c = self._centre
        vm = c.vm_index(instance)
        if not c.vm_alive[vm]:
            return None
        return c.fleet.host_names[int(c.vm_host[vm])]

    def set_host_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        index = self._centre.host_index(host)
        if state == HostState.OFF:
            self._centre.switch(index, on=False)
        elif state == HostState.ENABLED:
            self._centre.switch(index, on=True)
        self.host_states[host] = state
