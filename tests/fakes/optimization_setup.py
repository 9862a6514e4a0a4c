"""The optimization service as the tests build it: over one repositories object
(the fake or the SQL store) for cluster, audits and plans, on an in-memory bus,
with the discovered strategies and default limits; a test names only what it
cares about."""

from __future__ import annotations

from typing import Any

from opendrs.bus.memory import MemoryBus
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits
from opendrs.domain.clock import Clock
from opendrs.services.optimization import Optimization


def optimization_over(repos: Any, clock: Clock, **given: Any) -> Optimization:
    """An Optimization whose every argument not `given` has the tests' default."""
    arguments: dict[str, Any] = {
        "bus": MemoryBus(),
        "cluster": repos,
        "audits": repos,
        "plans": repos,
        "registry": StrategyRegistry.discover(),
        "limits": PlanLimits(),
        "clock": clock,
        "launch": lambda plan_id: None,
        **given,
    }
    return Optimization(**arguments)
