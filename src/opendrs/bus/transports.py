"""Opening the configured transport: the one place that maps `bus.transport` to
an adapter (wiring calls it); the networked clients are imported only when chosen."""

from __future__ import annotations

from opendrs.bus.memory import MemoryBus
from opendrs.config import BusSettings
from opendrs.domain.clock import Clock
from opendrs.domain.ports import Bus


def open_bus(
    settings: BusSettings, *, namespace: str | None = None, clock: Clock | None = None
) -> Bus:
    """A connected bus in `namespace` (default `bus.namespace`); raises DriverError
    (transient) when the server cannot be reached."""
    namespace = settings.namespace if namespace is None else namespace
    if settings.transport == "nats":
        from opendrs.bus.nats import DEFAULT_URL as NATS_URL
        from opendrs.bus.nats import NatsBus

        return NatsBus(settings.url or NATS_URL, namespace=namespace, clock=clock)
    if settings.transport == "rabbitmq":
        from opendrs.bus.rabbitmq import DEFAULT_URL as AMQP_URL
        from opendrs.bus.rabbitmq import RabbitBus

        return RabbitBus(settings.url or AMQP_URL, namespace=namespace, clock=clock)
    return MemoryBus(clock=clock)
