"""The names a deployment gives the servers' objects: the namespace (a NATS
stream, a RabbitMQ exchange) and consumer groups, checked before they reach a server."""

from __future__ import annotations

import re

from opendrs.domain.errors import InvalidInput

_NAMESPACE = re.compile(r"^[A-Za-z0-9_-]+$")
_GROUP = re.compile(r"^[A-Za-z0-9_.:-]+$")


def check_namespace(namespace: str) -> str:
    """Letters, digits, `_` and `-`: valid as a stream name and an exchange name."""
    if not isinstance(namespace, str) or not _NAMESPACE.match(namespace):
        raise InvalidInput(
            f"a bus namespace is letters, digits, '_' or '-', got {namespace!r}",
            source="bus",
            field="namespace",
        )
    return namespace


def check_group(group: str) -> str:
    """A consumer group: letters, digits, `_`, `-`, `.` and `:`; "" means no group."""
    if not isinstance(group, str) or (group and not _GROUP.match(group)):
        raise InvalidInput(
            f"a group is letters, digits, '_', '-', '.' or ':', got {group!r}",
            source="bus",
            field="group",
        )
    return group
