"""How patient the applier is: a timeout per action type, and how often and how late
an action whose driver call failed transiently is tried again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from opendrs.config import ApplierSettings
from opendrs.domain.action import ActionType
from opendrs.domain.errors import InvalidInput

# Watcher's default migration timeout is an hour at worst; a live migration of a
# large, busy VM can take tens of minutes, a host state change seconds.
DEFAULT_TIMEOUTS: Mapping[ActionType, float] = MappingProxyType(
    {
        ActionType.MIGRATE: 1800.0,
        ActionType.CHANGE_NODE_STATE: 300.0,
        ActionType.POWER: 900.0,
        ActionType.NOP: 60.0,
    }
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` in all (1: never retry); the n-th retry waits
    min(first_delay · factor^(n-1), max_delay) seconds of the injected clock."""

    attempts: int = 3
    first_delay: float = 5.0
    factor: float = 2.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise InvalidInput(
                f"must be a whole number >= 1, got {self.attempts!r}", field="attempts"
            )
        if self.first_delay < 0 or self.max_delay < 0:
            raise InvalidInput("delays cannot be negative", field="first_delay")
        if self.factor < 1:
            raise InvalidInput(f"must be >= 1, got {self.factor!r}", field="factor")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        return float(min(self.first_delay * self.factor ** (retry - 1), self.max_delay))


@dataclass(frozen=True, slots=True)
class ApplierPolicy:
    timeouts: Mapping[ActionType, float] = field(default_factory=lambda: DEFAULT_TIMEOUTS)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        for kind, seconds in self.timeouts.items():
            if seconds <= 0:
                raise InvalidInput(
                    f"must be more than 0 seconds, got {seconds!r}", field=f"timeouts.{kind}"
                )

    def timeout(self, kind: ActionType) -> float | None:
        """Seconds an action of `kind` may stay ONGOING (None: no limit)."""
        return self.timeouts.get(kind)


def policy_from_settings(settings: ApplierSettings) -> ApplierPolicy:
    """The policy the `applier` section of the configuration describes."""
    return ApplierPolicy(
        timeouts={
            ActionType.MIGRATE: settings.migrate_timeout_s,
            ActionType.CHANGE_NODE_STATE: settings.host_state_timeout_s,
            ActionType.POWER: settings.power_timeout_s,
            ActionType.NOP: DEFAULT_TIMEOUTS[ActionType.NOP],
        },
        retry=RetryPolicy(
            attempts=settings.retry_attempts,
            first_delay=settings.retry_first_delay_s,
            factor=settings.retry_factor,
            max_delay=settings.retry_max_delay_s,
        ),
    )
