"""Opening the configured transport."""

from __future__ import annotations

import pytest

from opendrs.bus.memory import MemoryBus
from opendrs.bus.transports import open_bus
from opendrs.config import BusSettings
from opendrs.domain.errors import DriverError, InvalidInput


def test_the_default_is_the_in_memory_bus() -> None:
    assert isinstance(open_bus(BusSettings()), MemoryBus)


def test_an_unreachable_nats_is_a_transient_driver_error() -> None:
    from opendrs.bus.nats import NatsBus

    with pytest.raises(DriverError) as caught:
        NatsBus("nats://127.0.0.1:1", namespace="unreachable", timeout=0.5)
    assert caught.value.transient
    assert "NATS at nats://127.0.0.1:1: cannot connect" in str(caught.value)


def test_an_unreachable_rabbitmq_is_a_transient_driver_error() -> None:
    settings = BusSettings(transport="rabbitmq", url="amqp://u:secret@127.0.0.1:1/")
    with pytest.raises(DriverError) as caught:
        open_bus(settings, namespace="unreachable")
    assert caught.value.transient
    assert "RabbitMQ at amqp://u:***@127.0.0.1:1/" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_bad_namespace_is_refused_before_connecting() -> None:
    with pytest.raises(InvalidInput, match="namespace"):
        open_bus(BusSettings(transport="nats"), namespace="has.dot")
