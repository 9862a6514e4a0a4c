"""Actions and action plans, with Watcher's states and their allowed moves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import new_id
from opendrs.domain.transitions import check_transition


class ActionType(StrEnum):
    MIGRATE = "migrate"
    CHANGE_NODE_STATE = "change_node_state"
    POWER = "power"
    NOP = "nop"


class ActionState(StrEnum):
    PENDING = "PENDING"
    ONGOING = "ONGOING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


FINAL_ACTION_STATES = frozenset(
    {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.SKIPPED, ActionState.CANCELLED}
)

_ACTION_MOVES: dict[ActionState, frozenset[ActionState]] = {
    ActionState.PENDING: frozenset(
        {ActionState.ONGOING, ActionState.SKIPPED, ActionState.CANCELLED, ActionState.SUCCEEDED}
    ),
    ActionState.ONGOING: frozenset(
        {ActionState.SUCCEEDED, ActionState.FAILED, ActionState.CANCELLED}
    ),
}

_NO_MOVES: frozenset[ActionState] = frozenset()
# Compared on every transition: a module name costs less than an enum class attribute.
_ONGOING = ActionState.ONGOING


class PlanState(StrEnum):
    RECOMMENDED = "RECOMMENDED"
    PENDING = "PENDING"
    ONGOING = "ONGOING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    SUPERSEDED = "SUPERSEDED"


FINAL_PLAN_STATES = frozenset(
    {PlanState.SUCCEEDED, PlanState.FAILED, PlanState.CANCELLED, PlanState.SUPERSEDED}
)

_PLAN_MOVES: dict[PlanState, frozenset[PlanState]] = {
    PlanState.RECOMMENDED: frozenset(
        {PlanState.PENDING, PlanState.CANCELLED, PlanState.SUPERSEDED, PlanState.SUCCEEDED}
    ),
    PlanState.PENDING: frozenset({PlanState.ONGOING, PlanState.CANCELLED}),
    PlanState.ONGOING: frozenset({PlanState.SUCCEEDED, PlanState.FAILED, PlanState.CANCELLING}),
    PlanState.CANCELLING: frozenset({PlanState.CANCELLED}),
}


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan. `parents` must all succeed before it may start."""

    type: ActionType
    parameters: Mapping[str, Any]
    parents: tuple[str, ...] = ()
    state: ActionState = ActionState.PENDING
    message: str = ""
    explanation: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    plan_id: str = ""
    id: str = field(default_factory=new_id)

    @property
    def instance(self) -> str | None:
        value = self.parameters.get("instance")
        return str(value) if value is not None else None

    @property
    def source(self) -> str | None:
        value = self.parameters.get("source")
        return str(value) if value is not None else None

    @property
    def destination(self) -> str | None:
        value = self.parameters.get("destination")
        return str(value) if value is not None else None

    @property
    def finished(self) -> bool:
        return self.state in FINAL_ACTION_STATES

    def moved_to(self, wanted: ActionState, when: float, message: str = "") -> Action:
        if wanted not in _ACTION_MOVES.get(self.state, _NO_MOVES):
            # check_transition raises the same InvalidTransition; it is called only
            # then, as this runs for every journaled transition.
            check_transition("action", _ACTION_MOVES, self.state, wanted)
        started = when if wanted == _ONGOING else self.started_at
        finished = when if wanted in FINAL_ACTION_STATES else None
        # The constructor, not dataclasses.replace: this runs for every journaled
        # transition, and replace costs twice as much.
        return Action(
            self.type,
            self.parameters,
            self.parents,
            wanted,
            message or self.message,
            self.explanation,
            started,
            finished,
            self.plan_id,
            self.id,
        )

    def with_parameters(self, parameters: Mapping[str, Any], message: str) -> Action:
        """The same action in the same state, with new parameters and message."""
        return Action(
            self.type,
            parameters,
            self.parents,
            self.state,
            message,
            self.explanation,
            self.started_at,
            self.finished_at,
            self.plan_id,
            self.id,
        )

    def in_plan(self, plan_id: str) -> Action:
        """The same action, recorded as belonging to plan `plan_id`."""
        return Action(
            self.type,
            self.parameters,
            self.parents,
            self.state,
            self.message,
            self.explanation,
            self.started_at,
            self.finished_at,
            plan_id,
            self.id,
        )


@dataclass(frozen=True, slots=True)
class PlanLimits:
    """How many migrations may run at once: per source host, per destination
    host and in all; and a bandwidth budget: the memory (MB) of the migrations started
    in any 60 seconds, 0 for none (one migration bigger than the budget may still
    start when nothing else did in the window). The planner records them in the plan;
    the applier enforces them."""

    max_per_source: int = 2
    max_per_destination: int = 2
    max_parallel: int = 8
    bandwidth_mb_per_minute: int = 0

    def __post_init__(self) -> None:
        for name in ("max_per_source", "max_per_destination", "max_parallel"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(f"must be a whole number >= 1, got {value!r}", field=name)
        budget = self.bandwidth_mb_per_minute
        if not isinstance(budget, int) or budget < 0:
            raise InvalidInput(
                f"must be a whole number >= 0 (0: no budget), got {budget!r}",
                field="bandwidth_mb_per_minute",
            )

    def tightest(self, other: PlanLimits) -> PlanLimits:
        """The stricter of two sets of limits, field by field."""
        budgets = [b for b in (self.bandwidth_mb_per_minute, other.bandwidth_mb_per_minute) if b]
        return PlanLimits(
            max_per_source=min(self.max_per_source, other.max_per_source),
            max_per_destination=min(self.max_per_destination, other.max_per_destination),
            max_parallel=min(self.max_parallel, other.max_parallel),
            bandwidth_mb_per_minute=min(budgets, default=0),
        )


@dataclass(frozen=True, slots=True)
class ActionPlan:
    audit_id: str
    actions: tuple[Action, ...]
    state: PlanState = PlanState.RECOMMENDED
    efficacy: Mapping[str, float] = field(default_factory=dict)
    message: str = ""
    created_at: float = 0.0
    id: str = field(default_factory=new_id)
    limits: PlanLimits = field(default_factory=PlanLimits)

    def moved_to(self, wanted: PlanState, message: str = "") -> ActionPlan:
        check_transition("action plan", _PLAN_MOVES, self.state, wanted)
        # The constructor, not dataclasses.replace (see Action.moved_to).
        return ActionPlan(
            self.audit_id,
            self.actions,
            wanted,
            self.efficacy,
            message or self.message,
            self.created_at,
            self.id,
            self.limits,
        )

    def action(self, action_id: str) -> Action:
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(action_id)

    def with_action(self, updated: Action) -> ActionPlan:
        return self.with_actions(tuple(updated if a.id == updated.id else a for a in self.actions))

    def with_actions(self, actions: tuple[Action, ...]) -> ActionPlan:
        """The same plan with `actions` in place of its own (the constructor, not
        dataclasses.replace, which costs twice as much on this hot path)."""
        return ActionPlan(
            self.audit_id,
            actions,
            self.state,
            self.efficacy,
            self.message,
            self.created_at,
            self.id,
            self.limits,
        )
