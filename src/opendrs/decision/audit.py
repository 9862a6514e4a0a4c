"""Running one audit: the goal's strategy, made with the audit's parameters and
scope, applied to a cluster snapshot."""

from __future__ import annotations

from typing import Any

from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.audit import Audit
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput
from opendrs.domain.solution import Solution


def run_audit(audit: Audit, cluster: Cluster, registry: StrategyRegistry) -> Solution:
    """The audit's scope becomes the strategy's `scope` parameter; naming a
    different scope in the parameters as well is a contradiction, not a choice."""
    parameters: dict[str, Any] = dict(audit.parameters)
    if audit.scope:
        given = parameters.get("scope")
        if given is not None and _hosts(given) != audit.scope:
            raise InvalidInput(
                f"scope {list(audit.scope)} and parameters.scope {given!r} disagree",
                source=f"audit {audit.id}",
                field="parameters.scope",
            )
        parameters["scope"] = list(audit.scope)
    strategy = registry.create(audit.goal, audit.strategy, parameters)
    return strategy.execute(cluster)


def _hosts(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()
