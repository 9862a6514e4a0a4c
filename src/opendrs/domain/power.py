"""The power port: switching a physical host on and off through its BMC (Redfish,
IPMI...), which hypervisor drivers such as libvirt cannot do. Implementations raise
DriverError with messages naming the host and the BMC, never a library's own error."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class PowerState(StrEnum):
    """What the BMC says of the host; UNKNOWN covers transitions (powering on/off),
    paused hosts and BMCs that do not say."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


class PowerControl(Protocol):
    """Power of the hosts one driver can reach. Both switches are idempotent: asking
    for the state a host is already in succeeds without touching it (an applier
    resuming after a crash repeats its last step). They return once the BMC reports
    the target state, or raise DriverError (transient when retrying may help:
    unreachable BMC, timeout)."""

    def controls(self, host: str) -> bool:
        """Whether this driver knows the BMC of `host`."""
        ...

    def power_state(self, host: str) -> PowerState: ...

    def power_on(self, host: str) -> None: ...

    def power_off(self, host: str, graceful: bool = True) -> None:
        """`graceful` asks the operating system to shut down (ACPI) where the BMC
        offers it, else the host is switched off."""
        ...

    def close(self) -> None:
        """Log out of the BMCs and drop their connections."""
        ...
