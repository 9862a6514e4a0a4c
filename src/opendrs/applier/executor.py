"""The journaled plan executor: runs action plans round by round through the cloud
driver within per-host and global limits, re-checks each migration against the
cloud's live view just before it starts (when there is one), writes every transition
to the journal before and after each driver call, and resumes plans a crash left
running."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from opendrs.applier import actions, preflight
from opendrs.applier.draft import PlanDraft
from opendrs.applier.policy import ApplierPolicy
from opendrs.applier.summary import describe, outcome
from opendrs.domain.action import (
    FINAL_ACTION_STATES,
    FINAL_PLAN_STATES,
    Action,
    ActionPlan,
    ActionState,
    ActionType,
    PlanLimits,
    PlanState,
)
from opendrs.domain.clock import Clock
from opendrs.domain.errors import InvalidInput, NotFound, ResourceBusy
from opendrs.domain.ports import CloudActions, LeaseRepository, LiveView, PlanRepository

log = logging.getLogger(__name__)

TransitionHook = Callable[[ActionPlan, Action | None], None]
"""Called after each journaled transition: (plan, action), or (plan, None) when the
plan itself changed state."""

_ACTIVE = (PlanState.ONGOING, PlanState.CANCELLING)
# Read for every action of every round: a module name costs less than an enum
# class attribute.
_PENDING = ActionState.PENDING
_ONGOING = ActionState.ONGOING
_SUCCEEDED = ActionState.SUCCEEDED
_FAILED = ActionState.FAILED
_MIGRATE = ActionType.MIGRATE
_ALL_PLANS = 1_000_000
# The bandwidth budget counts the migrations started within this many seconds.
_BUDGET_WINDOW = 60.0


@dataclass
class _Load:
    """Migrations in flight, by source host, by destination host and in all, and the
    memory (MB) of the migrations started since `since` (the bandwidth window)."""

    since: float
    sources: Counter[str] = field(default_factory=Counter)
    destinations: Counter[str] = field(default_factory=Counter)
    total: int = 0
    recent_mb: float = 0.0

    def add(self, source: str, destination: str) -> None:
        """A migration from `source` to `destination` now in flight."""
        self.sources[source] += 1
        self.destinations[destination] += 1
        self.total += 1

    def add_share(self, share: _Share) -> None:
        self.sources.update(share.sources)
        self.destinations.update(share.destinations)
        self.total += len(share.sources)
        since = self.since
        for started_at, memory_mb in share.started:
            if started_at >= since:
                self.recent_mb += memory_mb

    def allows(self, source: str, destination: str, memory_mb: float, limits: PlanLimits) -> bool:
        """Whether a migration of `memory_mb` from `source` to `destination` may start."""
        budget = limits.bandwidth_mb_per_minute
        over_budget = bool(budget) and self.recent_mb > 0 and (self.recent_mb + memory_mb > budget)
        if over_budget or self.total >= limits.max_parallel:
            return False
        return (
            self.sources[source] < limits.max_per_source
            and self.destinations[destination] < limits.max_per_destination
        )


@dataclass(frozen=True, slots=True)
class _Share:
    """What one plan adds to the load: the source and destination of each migration
    in flight, and when each started migration started and its memory, in plan order."""

    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    started: tuple[tuple[float, float], ...]

    @staticmethod
    def of(plan: ActionPlan) -> _Share:
        sources: list[str] = []
        destinations: list[str] = []
        started: list[tuple[float, float]] = []
        for action in plan.actions:
            if action.type != _MIGRATE:
                continue
            ongoing = action.state == _ONGOING
            if not ongoing and action.started_at is None:
                continue
            source, destination, memory_mb = _migration(action)
            if ongoing:
                sources.append(source)
                destinations.append(destination)
            if action.started_at is not None:
                started.append((action.started_at, memory_mb))
        return _Share(tuple(sources), tuple(destinations), tuple(started))


def _migration(action: Action) -> tuple[str, str, float]:
    """(source or "", destination or "", memory MB or 0) of a migration: its ends as
    `Action.source`/`destination` read them, straight from the parameters (this
    runs several times for every migration)."""
    p = action.parameters
    source, destination, memory = p.get("source"), p.get("destination"), p.get("memory_mb", 0)
    return (
        str(source) if source is not None else "",
        str(destination) if destination is not None else "",
        float(memory) if isinstance(memory, (int, float)) else 0.0,
    )


class PlanExecutor:
    """Step-driven: nothing runs until `advance` is called, so the simulator and the
    tests own time. All state lives in the repository; a new executor over the same
    repository and cloud carries on where a crashed one stopped (see `resume`).

    `live` is where the cloud as it is now is read before each migration starts
    (default: the driver, when it is a LiveView): a migration whose instance is gone
    or elsewhere, whose destination is no longer enabled or has no room left for it
    fails without running, with the reason; one already done succeeds. Without a
    live view only the instance's location is checked."""

    def __init__(
        self,
        plans: PlanRepository,
        driver: CloudActions,
        clock: Clock,
        limits: PlanLimits | None = None,
        on_transition: TransitionHook | None = None,
        policy: ApplierPolicy | None = None,
        live: LiveView | None = None,
    ) -> None:
        self._plans = plans
        self._driver = driver
        self._clock = clock
        self._limits = limits or PlanLimits()
        self._on_transition = on_transition
        self._policy = policy or ApplierPolicy()
        # Checked once, like the leases below.
        self._live: LiveView | None = live
        if live is None and isinstance(driver, LiveView):
            self._live = driver
        self.hook_failures = 0
        self.plan_failures = 0
        # Checked once: isinstance against a runtime Protocol is slow, and asked for
        # every plan that starts or ends.
        self._leases: LeaseRepository | None = plans if isinstance(plans, LeaseRepository) else None
        # The load share of each running plan as last read; a repository that hands
        # back the same (immutable) plan object while it is unchanged saves the
        # recount.
        self._shares: dict[str, tuple[ActionPlan, _Share]] = {}
        # Plans that ended while a migration they started is still within the
        # bandwidth window: its memory still counts against the budget.
        self._ended: dict[str, _Share] = {}
        self._running: set[str] = set()  # the plans running at the last count
        # Each plan's limits combined with the executor's, by the plan's limits (a
        # handful of distinct values; combining builds and checks a new PlanLimits).
        self._tightest: dict[PlanLimits, PlanLimits] = {}

    # --- commands --------------------------------------------------------

    def start(self, plan_id: str) -> ActionPlan:
        """Move a RECOMMENDED or PENDING plan to ONGOING; `advance` then runs it."""
        plan = self._plans.get_plan(plan_id)
        _validate(plan)
        if plan.state in (PlanState.RECOMMENDED, PlanState.PENDING):
            self._lease(plan)
        if plan.state == PlanState.RECOMMENDED:
            plan = self._set_state(plan, PlanState.PENDING, "approved")
        plan = self._set_state(plan, PlanState.ONGOING, "started")
        return self._conclude(plan)

    def submit(self, plan_id: str) -> ActionPlan:
        """Approve a plan and start it now if its hosts and VMs are free; otherwise it
        waits PENDING and `advance_all` starts it once the plans holding them end."""
        try:
            return self.start(plan_id)
        except ResourceBusy as busy:
            plan = self._plans.get_plan(plan_id)
            if plan.state == PlanState.RECOMMENDED:
                plan = self._set_state(plan, PlanState.PENDING, f"waiting: {busy}")
            return plan

    def advance(self, plan_id: str) -> ActionPlan:
        """One round: settle what is in flight, then start what is ready."""
        plan = self._plans.get_plan(plan_id)
        if plan.state not in _ACTIVE:
            return plan
        draft = PlanDraft(plan)
        self._settle(draft, [a for a in plan.actions if a.state == _ONGOING])
        if plan.state == PlanState.ONGOING:
            self._start_ready(draft)
        return self._conclude(draft.plan())

    def advance_all(self) -> list[ActionPlan]:
        """One round of every running plan, oldest first, after starting the approved
        (PENDING) plans whose hosts and VMs are free; a plan whose resources another
        plan holds waits PENDING. A plan that raises is logged, counted and left for
        the next round."""
        self._start_approved()
        advanced: list[ActionPlan] = []
        for plan in self._active_plans():
            try:
                advanced.append(self.advance(plan.id))
            except Exception:
                self.plan_failures += 1
                log.exception("advancing action plan %s failed", plan.id)
        return advanced

    def cancel(self, plan_id: str, *, abort: bool = False) -> ActionPlan:
        """No new action starts, pending ones are cancelled, running ones finish (or,
        with `abort`, are stopped where the driver can); the plan ends CANCELLED once
        nothing is in flight."""
        plan = self._plans.get_plan(plan_id)
        if plan.state in (PlanState.RECOMMENDED, PlanState.PENDING):
            plan = self._cancel_pending(plan)
            return self._set_state(plan, PlanState.CANCELLED, "cancelled before it started")
        if plan.state != PlanState.CANCELLING:
            plan = self._set_state(plan, PlanState.CANCELLING, "cancelling")
        plan = self._cancel_pending(plan)
        if abort:
            draft = PlanDraft(plan)
            for action in [a for a in plan.actions if a.state == ActionState.ONGOING]:
                result = actions.abort(self._driver, action)
                if result is not None:
                    self._apply(draft, action, result)
            plan = draft.plan()
        return self._conclude(plan)

    def resume(self) -> list[ActionPlan]:
        """After a restart: start plans left PENDING (approved, not yet running) and
        reconcile every action a crash left ONGOING without a known operation against
        the cloud, so each VM moves exactly once."""
        self._release_stale_leases()
        self._start_approved()
        resumed: list[ActionPlan] = []
        for plan in self._active_plans():
            lost = [
                a
                for a in plan.actions
                if a.state == ActionState.ONGOING and not a.parameters.get(actions.OPERATION_ID)
            ]
            try:
                draft = PlanDraft(plan)
                self._settle(draft, lost)
                resumed.append(self._conclude(draft.plan()))
            except Exception:
                self.plan_failures += 1
                log.exception("resuming action plan %s failed", plan.id)
        return resumed

    def _release_stale_leases(self) -> None:
        """A crash between a plan's last state write and giving back its leases
        leaves them held by a finished (or deleted) plan: give them back."""
        leases = self._leases
        if leases is None:
            return
        for owner in sorted(set(leases.list_leases().values())):
            try:
                finished = self._plans.get_plan(owner).state in FINAL_PLAN_STATES
            except NotFound:
                finished = True
            if finished:
                released = leases.release_leases(owner)
                log.info("released %d lease(s) left by finished plan %s", released, owner)

    def _start_approved(self) -> None:
        approved = self._plans.list_plans([PlanState.PENDING], limit=_ALL_PLANS)
        for plan in sorted(approved, key=lambda p: p.created_at):
            try:
                self.start(plan.id)
            except ResourceBusy as busy:
                log.debug("action plan %s waits: %s", plan.id, busy)
            except Exception:
                self.plan_failures += 1
                log.exception("starting approved action plan %s failed", plan.id)

    # --- rounds ----------------------------------------------------------

    def _settle(self, draft: PlanDraft, running: Iterable[Action]) -> None:
        now = self._clock.now()
        # ApplierPolicy.timeout, read once per round.
        timeouts = self._policy.timeouts
        for action in list(running):
            timeout = timeouts.get(action.type)
            operation_id = action.parameters.get(actions.OPERATION_ID)
            retry_at = action.parameters.get(actions.RETRY_AT)
            waiting = retry_at is not None and not operation_id
            if (
                timeout is not None
                and action.started_at is not None
                and (now - action.started_at > timeout)
            ):
                result = actions.expire(self._driver, action, timeout)
            elif waiting and now < float(retry_at or 0.0):
                continue
            elif waiting:
                result = actions.retry(self._driver, action, self._preflight(draft))
            elif operation_id:
                result = actions.poll(self._driver, action)
            else:
                result = actions.reconcile(self._driver, action)
            self._apply(draft, action, result)

    def _start_ready(self, draft: PlanDraft) -> None:
        before = draft.plan()
        limits = self._tightest.get(before.limits)
        if limits is None:
            limits = self._tightest[before.limits] = before.limits.tightest(self._limits)
        since = self._clock.now() - _BUDGET_WINDOW
        # The load of the running plans is read only when a migration is ready to
        # start (often none is, e.g. when a round only settled what was in flight),
        # and then as it stood when the round began.
        loaded: _Load | None = None

        def load_now() -> _Load:
            nonlocal loaded
            if loaded is None:
                loaded = _Load(since=since)
                shares: dict[str, tuple[ActionPlan, _Share]] = {}
                own: _Share | None = None
                active = self._active_plans()
                for other in active:
                    known = self._shares.get(other.id)
                    if known is None or known[0] is not other:
                        if other.id == before.id and other is not before:
                            continue  # counted below, as this round found it
                        known = (other, _Share.of(other))
                    shares[other.id] = known
                    if other.id != before.id:
                        loaded.add_share(known[1])
                    elif other is before:
                        own = known[1]
                # This plan last, as it stood when the round began.
                loaded.add_share(own if own is not None else _Share.of(before))
                if limits.bandwidth_mb_per_minute:
                    self._count_ended({p.id for p in active} | {before.id}, since, loaded)
                self._shares = shares
            return loaded

        progressed = True
        while progressed:
            progressed = False
            # Only actions pending when the pass begins can start in it (an action
            # leaves PENDING only by its own turn below).
            waiting = [a.id for a in draft.actions if a.state == _PENDING]
            for action_id in waiting:
                action = draft.action(action_id)
                if action.state != _PENDING:
                    continue
                if action.parents:
                    parents = [draft.action(p) for p in action.parents]
                    broken = next(
                        (p for p in parents if p.finished and p.state != ActionState.SUCCEEDED),
                        None,
                    )
                    if broken is not None:
                        self._skip(draft, action, broken)
                        progressed = True
                        continue
                    if any(p.state != _SUCCEEDED for p in parents):
                        continue
                if action.type == _MIGRATE:
                    # Its ends and memory read once, for the check and the count.
                    source, destination, memory_mb = _migration(action)
                    load = loaded if loaded is not None else load_now()
                    if not load.allows(source, destination, memory_mb, limits):
                        continue
                    if self._run(draft, action).state == _ONGOING:
                        load.add(source, destination)
                    load.recent_mb += memory_mb
                else:
                    self._run(draft, action)
                progressed = True

    def _run(self, draft: PlanDraft, action: Action) -> Action:
        """Journal `action` ONGOING, then start it; the action as it then stands."""
        ongoing = action.moved_to(_ONGOING, self._clock.now(), "starting")
        self._journal(draft, ongoing)
        check = self._preflight(draft) if self._live is not None else None
        return self._apply(draft, ongoing, actions.begin(self._driver, ongoing, check))

    def _apply(self, draft: PlanDraft, action: Action, result: actions.Outcome) -> Action:
        """Journal what `result` says of `action`; the action as it then stands (its
        state as the journal has it)."""
        if result.restart:
            marked = action.with_parameters(
                {**action.parameters, actions.RESTARTED: True}, result.message
            )
            self._journal(draft, marked, transition=False)
            action = marked
            result = actions.relaunch(self._driver, marked, self._preflight(draft))
        if result.state is None:
            known = action.parameters.get(actions.OPERATION_ID)
            if result.operation_id and result.operation_id != known:
                started = action.with_parameters(
                    {**action.parameters, actions.OPERATION_ID: result.operation_id},
                    result.message,
                )
                return self._journal(draft, started, transition=False)
            return action
        if result.state == _FAILED and result.transient:
            tried = int(action.parameters.get(actions.ATTEMPTS, 1))
            retry = self._policy.retry
            if tried < retry.attempts:
                when = self._clock.now() + retry.delay(tried)
                waiting = action.with_parameters(
                    {
                        **action.parameters,
                        actions.ATTEMPTS: tried + 1,
                        actions.RETRY_AT: when,
                    },
                    f"{result.message}; attempt {tried + 1} of {retry.attempts} at {when:g}",
                )
                return self._journal(draft, waiting, transition=False)
        finished = action.moved_to(result.state, self._clock.now(), result.message)
        if result.state == _FAILED:
            log.warning("action %s failed: %s", describe(action), result.message)
        return self._journal(draft, finished)

    def _preflight(self, draft: PlanDraft) -> actions.Preflight | None:
        """The live re-check of a migration of `draft` about to start, or None
        without a live view. Migrations in flight to the same host, of this plan and
        of the other running ones, count on it as the planner counted them."""
        view = self._live
        if view is None:
            return None

        def check(action: Action) -> preflight.Verdict:
            instance, source, destination = (
                action.instance or "",
                action.source or "",
                action.destination or "",
            )
            others = [p for p in self._active_plans() if p.id != draft.id]
            flying = [a for plan in others for a in plan.actions]
            flying += draft.actions
            arriving = preflight.arrivals(flying, destination, instance)
            return preflight.judge(view, instance, source, destination, arriving)

        return check

    def _skip(self, draft: PlanDraft, action: Action, parent: Action) -> None:
        if parent.state == ActionState.SKIPPED:
            why = parent.message
        else:
            why = f"{describe(parent)} {parent.state.value.lower()}"
        skipped = action.moved_to(ActionState.SKIPPED, self._clock.now(), why)
        self._journal(draft, skipped)

    def _cancel_pending(self, plan: ActionPlan) -> ActionPlan:
        draft = PlanDraft(plan)
        for action in plan.actions:
            if action.state == ActionState.PENDING:
                cancelled = action.moved_to(ActionState.CANCELLED, self._clock.now(), "cancelled")
                self._journal(draft, cancelled)
        return draft.plan()

    def _conclude(self, plan: ActionPlan) -> ActionPlan:
        if plan.state not in _ACTIVE:
            return plan
        # One pass over the actions (this runs after every round of every plan).
        finished = succeeded = True
        for action in plan.actions:
            state = action.state
            if state == _ONGOING:
                return plan
            if state != _SUCCEEDED:
                succeeded = False
                if state not in FINAL_ACTION_STATES:
                    finished = False
        if plan.state == PlanState.CANCELLING:
            plan = self._cancel_pending(plan)
            return self._set_state(plan, PlanState.CANCELLED, outcome(plan))
        if not finished:
            return plan
        if succeeded:
            return self._set_state(plan, PlanState.SUCCEEDED, outcome(plan))
        return self._set_state(plan, PlanState.FAILED, outcome(plan))

    # --- journal and notifications -------------------------------------------

    def _count_ended(self, running: set[str], since: float, load: _Load) -> None:
        """Add to `load` the recent starts of plans no longer running: each is read
        once more as it ended (the last share read may predate its last starts) and
        kept while one of its starts is within the window."""
        for plan_id in self._running - running:
            try:
                self._ended[plan_id] = _Share.of(self._plans.get_plan(plan_id))
            except NotFound:
                continue
        self._running = running
        self._ended = {
            plan_id: share
            for plan_id, share in self._ended.items()
            if plan_id not in running and any(at >= since for at, _ in share.started)
        }
        for share in self._ended.values():
            load.recent_mb += sum(mb for at, mb in share.started if at >= since)

    def _active_plans(self) -> list[ActionPlan]:
        found = self._plans.list_plans(list(_ACTIVE), limit=_ALL_PLANS)
        return sorted(found, key=lambda p: p.created_at)

    def _journal(self, draft: PlanDraft, action: Action, *, transition: bool = True) -> Action:
        """Write `action` to the journal, then to `draft`; the action as written."""
        if action.plan_id != draft.id:
            action = action.in_plan(draft.id)
        self._plans.journal_action(action)
        draft.put(action)
        # The plan is assembled for the hook only: with none, nobody looks at it.
        if transition and self._on_transition is not None:
            self._notify(draft.plan(), action)
        return action

    def _set_state(self, plan: ActionPlan, state: PlanState, message: str) -> ActionPlan:
        moved = plan.moved_to(state, message)
        self._plans.set_plan_state(plan.id, state, message)
        if state in FINAL_PLAN_STATES and self._leases is not None:
            self._leases.release_leases(plan.id)
        self._notify(moved, None)
        return moved

    def _lease(self, plan: ActionPlan) -> None:
        """Take the plan's hosts and instances, or raise ResourceBusy naming who holds
        what; plans on disjoint hosts never wait for each other."""
        if self._leases is None:
            return
        held = self._leases.acquire_leases(plan.id, sorted(resources(plan)))
        if held:
            raise ResourceBusy(f"action plan {plan.id} cannot start", held)

    def _notify(self, plan: ActionPlan, action: Action | None) -> None:
        if self._on_transition is None:
            return
        try:
            self._on_transition(plan, action)
        except Exception:
            self.hook_failures += 1
            log.exception("on_transition hook failed for plan %s", plan.id)


def resources(plan: ActionPlan) -> set[str]:
    """What a plan touches: `host:NAME` of every host and `instance:NAME` of every VM."""
    found: set[str] = set()
    for action in plan.actions:
        for key in ("source", "destination", "node"):
            value = action.parameters.get(key)
            if value:
                found.add(f"host:{value}")
        if action.instance:
            found.add(f"instance:{action.instance}")
    return found


def _validate(plan: ActionPlan) -> None:
    """A plan must be a DAG over its own actions, and migrations must say what moves where."""
    source = f"action plan {plan.id}"
    ids = {a.id for a in plan.actions}
    for index, action in enumerate(plan.actions):
        for parent in action.parents:
            if parent not in ids:
                raise InvalidInput(
                    f"unknown parent {parent!r}", source=source, field=f"actions[{index}].parents"
                )
        p = action.parameters
        # Straight from the parameters, as Action.instance/source/destination read
        # them (None exactly when they are).
        if action.type == _MIGRATE and (
            p.get("instance") is None or p.get("source") is None or p.get("destination") is None
        ):
            raise InvalidInput(
                "migrate needs instance, source and destination",
                source=source,
                field=f"actions[{index}].parameters",
            )
    parents = {a.id: a.parents for a in plan.actions}
    if not any(parents.values()):
        return  # no dependency at all: nothing can be circular
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(node: str) -> None:
        # Iterative to stay clear of the recursion limit on long chains.
        stack = [(node, iter(parents[node]))]
        visiting.add(node)
        while stack:
            current, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                stack.pop()
                visiting.discard(current)
                done.add(current)
            elif nxt in visiting:
                raise InvalidInput(f"action {nxt} depends on itself", source=source)
            elif nxt not in done:
                visiting.add(nxt)
                stack.append((nxt, iter(parents[nxt])))

    for action_id in parents:
        if action_id not in done:
            visit(action_id)
