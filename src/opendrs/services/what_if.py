"""What-if audits: one audit on a scenario file through the real decision
engine and planner, reported as JSON; no cloud is touched."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import PlanLimits
from opendrs.domain.audit import Audit
from opendrs.planner import build_plan
from opendrs.scenario import load_scenario


def what_if(
    scenario: Path,
    *,
    goal: str,
    strategy: str = "",
    parameters: Mapping[str, Any] | None = None,
    registry: StrategyRegistry | None = None,
    limits: PlanLimits | None = None,
) -> dict[str, Any]:
    cluster = load_scenario(scenario)
    audit = Audit(goal=goal, strategy=strategy, parameters=dict(parameters or {}))
    solution = run_audit(audit, cluster, registry or StrategyRegistry.discover())
    plan = build_plan(solution, cluster, limits or PlanLimits(), audit.id, 0.0)
    # Short ids (a1, a2, ...) in plan order read better than UUIDs in a report.
    short = {a.id: f"a{n}" for n, a in enumerate(plan.actions, start=1)}
    actions = [
        {
            "id": short[a.id],
            "type": a.type.value,
            "instance": a.instance,
            "source": a.source,
            "destination": a.destination,
            "node": a.parameters.get("node"),
            "state": a.parameters.get("state"),
            "after": [short[p] for p in a.parents],
            "explanation": a.explanation,
        }
        for a in plan.actions
    ]
    return {
        "goal": goal,
        "strategy": strategy or registry_default(goal, registry),
        "actions": actions,
        "efficacy": dict(solution.efficacy),
        "explanations": list(solution.explanations),
    }


def registry_default(goal: str, registry: StrategyRegistry | None) -> str:
    return (registry or StrategyRegistry.discover()).strategy_type(goal).name
