"""What-if audits: one audit on a cluster snapshot (a scenario file, or the live
model through the API) through the real decision engine and planner, reported as
JSON; no cloud is touched and nothing is stored."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opendrs.decision.audit import run_audit
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import Action, PlanLimits
from opendrs.domain.audit import Audit
from opendrs.domain.cluster import Cluster
from opendrs.planner import build_plan
from opendrs.scenario import load_scenario

ACTION_KEYS = ("id", "type", "instance", "source", "destination", "node", "state", "after")


def what_if(
    scenario: Path,
    *,
    goal: str,
    strategy: str = "",
    parameters: Mapping[str, Any] | None = None,
    registry: StrategyRegistry | None = None,
    limits: PlanLimits | None = None,
) -> dict[str, Any]:
    """`{"actions": [...], "efficacy": {...}, "explanations": [...]}` for one audit
    of `goal` on the scenario file."""
    audit = Audit(goal=goal, strategy=strategy, parameters=dict(parameters or {}))
    return what_if_report(load_scenario(scenario), audit, registry, limits)


def what_if_report(
    cluster: Cluster,
    audit: Audit,
    registry: StrategyRegistry | None = None,
    limits: PlanLimits | None = None,
) -> dict[str, Any]:
    """The audit run on `cluster` and ordered by the planner. Actions carry exactly
    ACTION_KEYS; their reasons, and the audit's own, are in `explanations`."""
    registry = registry or StrategyRegistry.discover()
    strategy = registry.strategy_type(audit.goal, audit.strategy).name
    solution = run_audit(audit, cluster, registry)
    plan = build_plan(solution, cluster, limits or PlanLimits(), audit.id, 0.0)
    # Short ids (a1, a2, ...) in plan order read better than UUIDs in a report.
    short = {a.id: f"a{n}" for n, a in enumerate(plan.actions, start=1)}
    actions = [action_json(a, short) for a in plan.actions]
    explanations = [f"goal {audit.goal}, strategy {strategy}"]
    explanations.extend(solution.explanations)
    if not plan.actions:
        explanations.append("the audit proposes no action")
    explanations.extend(f"{short[a.id]}: {a.explanation}" for a in plan.actions)
    return {
        "actions": actions,
        "efficacy": dict(solution.efficacy),
        "explanations": explanations,
    }


def action_json(action: Action, short: Mapping[str, str]) -> dict[str, Any]:
    node = action.parameters.get("node")
    state = action.parameters.get("state")
    return {
        "id": short[action.id],
        "type": action.type.value,
        "instance": action.instance,
        "source": action.source,
        "destination": action.destination,
        "node": None if node is None else str(node),
        "state": None if state is None else str(state),
        "after": [short[p] for p in action.parents],
    }


def scope_entries(
    hosts: Sequence[str], aggregates: Sequence[str], zones: Sequence[str]
) -> tuple[str, ...]:
    """One audit scope from its three kinds of entries (hosts, aggregates, zones)."""
    return (
        *hosts,
        *(f"aggregate:{a}" for a in aggregates),
        *(f"zone:{z}" for z in zones),
    )
