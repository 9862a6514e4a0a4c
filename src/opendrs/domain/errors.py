"""The errors every layer may raise; adapters translate library errors into these."""

from __future__ import annotations


class OpendrsError(Exception):
    """Base of every error opendrs raises on purpose."""


class InvalidInput(OpendrsError):
    """Bad input: a file, an API body, a bus message or a driver reply.

    `source` names where it came from (a file path, `POST /v1/audits`, a subject)
    and `field` the dotted path of the offending field, when known.
    """

    def __init__(self, problem: str, *, source: str = "", field: str = "") -> None:
        self.problem = problem
        self.source = source
        self.field = field
        where = ": ".join(part for part in (source, field) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class NotFound(OpendrsError):
    """A named thing (host, instance, plan...) does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class InvalidTransition(OpendrsError):
    """A state machine was asked for a transition it does not allow."""

    def __init__(self, kind: str, current: str, wanted: str) -> None:
        self.kind = kind
        self.current = current
        self.wanted = wanted
        super().__init__(f"{kind} cannot go from {current} to {wanted}")


class DriverError(OpendrsError):
    """A cloud driver call failed; `transient` errors may be retried."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class StoreError(OpendrsError):
    """The store could not read or write (its database is down, locked or full);
    `transient` errors may succeed when retried."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.transient = transient
        super().__init__(message)


class PlanningError(OpendrsError):
    """A solution cannot be turned into a safe action plan; `moves` names the
    instances whose moves are at fault and the message says why."""

    def __init__(self, problem: str, *, moves: tuple[str, ...] = ()) -> None:
        self.problem = problem
        self.moves = moves
        super().__init__(problem)


class ResourceBusy(OpendrsError):
    """Resources another plan holds: `held` maps each resource to its holder."""

    def __init__(self, what: str, held: dict[str, str]) -> None:
        self.held = dict(held)
        listing = ", ".join(f"{r} (held by plan {o})" for r, o in sorted(held.items()))
        super().__init__(f"{what}: busy resources: {listing}")
