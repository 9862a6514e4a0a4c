"""What each action type does against the cloud driver: start, poll, and reconcile
after a crash. Driver failures become outcomes here and never escape; journaling is
the executor's business, so these functions never touch the repository."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import NamedTuple, TypeVar, TypeVarTuple

from opendrs.applier.preflight import Verdict
from opendrs.domain.action import Action, ActionState, ActionType
from opendrs.domain.errors import DriverError
from opendrs.domain.host import HostState
from opendrs.domain.ports import CloudActions, OperationAborter, OperationFinder, OperationState

log = logging.getLogger(__name__)

OPERATION_ID = "operation_id"
RESTARTED = "restarted"
ATTEMPTS = "attempts"
RETRY_AT = "retry_at"

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Compared on every driver call: a module name costs less than an enum class attribute.
_MIGRATE = ActionType.MIGRATE
_SUCCEEDED = ActionState.SUCCEEDED
_RUNNING = OperationState.RUNNING
_DONE = OperationState.SUCCEEDED

Preflight = Callable[[Action], Verdict]
"""The live re-check of a migration about to start (see `preflight.judge`)."""


class Outcome(NamedTuple):
    """Where an action stands after a driver call. `state` None means still running
    (then `operation_id` names the migration to poll); `restart` asks the executor to
    journal a restart and start the migration again. (A named tuple: as immutable as
    a frozen dataclass, and several times cheaper to build, twice per migration.)"""

    state: ActionState | None
    message: str = ""
    operation_id: str | None = None
    restart: bool = False
    transient: bool = False


def _failed(message: str, *, transient: bool = False) -> Outcome:
    """`transient`: the driver said trying again may work."""
    return Outcome(ActionState.FAILED, message, transient=transient)


class _Unexpected(Exception):
    """A driver raised something other than DriverError (a bug in the driver)."""


def _call(what: str, call: Callable[[*Ts], T], *args: *Ts) -> T:
    # The call and its arguments rather than a closure: this runs for every driver
    # call of every migration.
    try:
        return call(*args)
    except DriverError:
        raise
    except Exception as error:
        log.exception("driver call %s failed unexpectedly", what)
        raise DriverError(f"{what}: unexpected driver error: {error!r}") from error


def begin(driver: CloudActions, action: Action, preflight: Preflight | None = None) -> Outcome:
    """Do an action's first step. A migration first looks at the cloud as it is now:
    through `preflight` when there is one (instance, destination state and room),
    else by where its instance is."""
    try:
        if action.type == _MIGRATE:
            return _begin_migration(driver, action, preflight)
        if action.type in (ActionType.CHANGE_NODE_STATE, ActionType.POWER):
            node = str(action.parameters["node"])
            state = HostState(str(action.parameters["state"]))
            reason = action.parameters.get("reason") or None
            _call("set_host_state", driver.set_host_state, node, state, reason)
            return Outcome(ActionState.SUCCEEDED, f"{node} is now {state.value}")
        if action.type == ActionType.NOP:
            return Outcome(ActionState.SUCCEEDED, "nothing to do")
        return _failed(f"action type {action.type.value} is not supported by this applier")
    except DriverError as error:
        return _failed(str(error), transient=error.transient)
    except (KeyError, ValueError) as error:
        return _failed(f"bad action parameters: {error!r}")


def _begin_migration(driver: CloudActions, action: Action, preflight: Preflight | None) -> Outcome:
    if preflight is not None:
        return relaunch(driver, action, preflight)
    instance, source, destination = _route(action)
    where = _call("locate", driver.locate, instance)
    if where == destination:
        return Outcome(ActionState.SUCCEEDED, f"{instance} is already on {destination}")
    if where != source:
        return _failed(_misplaced(instance, where, f"source {source}"))
    return _launch(driver, action, instance, destination)


def relaunch(driver: CloudActions, action: Action, preflight: Preflight | None) -> Outcome:
    """Start the migration unless `preflight` says it must not run or has nothing
    left to do (then nothing is asked of the driver)."""
    if preflight is not None:
        try:
            verdict = _call("live view", preflight, action)
        except DriverError as error:
            return _failed(
                f"cannot check the destination before moving: {error}", transient=error.transient
            )
        if verdict.state is not None:
            return Outcome(verdict.state, verdict.message)
    return launch(driver, action)


def launch(driver: CloudActions, action: Action) -> Outcome:
    """Start the migration itself (its instance was found on the source)."""
    instance, _, destination = _route(action)
    return _launch(driver, action, instance, destination)


def _launch(driver: CloudActions, action: Action, instance: str, destination: str) -> Outcome:
    """`launch`, with the route already read."""
    live = bool(action.parameters.get("live", True))
    try:
        operation = _call("start_migration", driver.start_migration, instance, destination, live)
    except DriverError as error:
        return _failed(str(error), transient=error.transient)
    return Outcome(None, f"migrating (operation {operation})", operation_id=operation)


def poll(driver: CloudActions, action: Action) -> Outcome:
    """How a running migration is going; a lost operation is settled by locating the VM."""
    operation_id = str(action.parameters[OPERATION_ID])
    try:
        operation = _call("operation", driver.operation, operation_id)
    except DriverError as error:
        if error.transient:
            return Outcome(None, action.message, operation_id=operation_id)
        return _settle_by_location(driver, action, f"operation {operation_id}: {error}")
    state = operation.state
    if state == _RUNNING:
        return Outcome(None, action.message, operation_id=operation_id)
    if state == _DONE:
        _, _, destination = _route(action)
        return Outcome(_SUCCEEDED, f"migrated to {destination}")
    return _failed(operation.message or f"operation {operation_id} failed")


def reconcile(driver: CloudActions, action: Action) -> Outcome:
    """Settle an action journaled ONGOING whose outcome was lost in a crash."""
    if action.type != ActionType.MIGRATE:
        # Host state changes are idempotent and nops trivial: do them again.
        return begin(driver, action)
    if action.parameters.get(OPERATION_ID):
        return poll(driver, action)
    instance, source, destination = _route(action)
    try:
        if isinstance(driver, OperationFinder):
            running = _call("running_operation", driver.running_operation, instance)
            if running is not None and running.state == OperationState.RUNNING:
                return Outcome(None, f"migrating (operation {running.id})", running.id)
        where = _call("locate", driver.locate, instance)
    except DriverError as error:
        if error.transient:
            return Outcome(None, action.message)
        return _failed(f"could not reconcile after a restart: {error}")
    if where == destination:
        return Outcome(ActionState.SUCCEEDED, f"found on {destination} after a restart")
    if where != source:
        return _failed(_misplaced(instance, where, f"{source} or {destination}"))
    if action.parameters.get(RESTARTED) and not isinstance(driver, OperationFinder):
        # Without a way to see running operations a second restart could start the
        # same migration twice; a person has to look.
        return _failed(
            f"interrupted twice while starting; cannot tell whether {instance} is migrating"
        )
    return Outcome(None, "restarting after an interruption", restart=True)


def retry(driver: CloudActions, action: Action, preflight: Preflight | None = None) -> Outcome:
    """Try an action again after a transient failure: a migration the failed call
    may have started anyway is adopted rather than started twice."""
    if action.type == ActionType.MIGRATE and isinstance(driver, OperationFinder):
        instance, _, _ = _route(action)
        try:
            running = _call("running_operation", driver.running_operation, instance)
        except DriverError as error:
            return _failed(str(error), transient=error.transient)
        if running is not None and running.state == OperationState.RUNNING:
            return Outcome(None, f"migrating (operation {running.id})", running.id)
    return begin(driver, action, preflight)


def expire(driver: CloudActions, action: Action, timeout: float) -> Outcome:
    """An action ran past its timeout: stop its migration where the driver can, then
    settle by where the instance is."""
    problem = f"timed out after {timeout:g} s"
    if action.type != ActionType.MIGRATE:
        return _failed(problem)
    operation_id = action.parameters.get(OPERATION_ID)
    if operation_id and isinstance(driver, OperationAborter):
        try:
            _call("abort_operation", driver.abort_operation, str(operation_id))
            problem += "; the migration was aborted"
        except DriverError as error:
            problem += f"; aborting the migration failed: {error}"
    elif operation_id:
        problem += "; this driver cannot abort the migration, which may still finish"
    return _settle_by_location(driver, action, problem)


def abort(driver: CloudActions, action: Action) -> Outcome | None:
    """Stop a running migration of a cancelled plan; None when the driver cannot,
    and the migration is left to finish."""
    operation_id = action.parameters.get(OPERATION_ID)
    if action.type != ActionType.MIGRATE or not operation_id:
        return None
    if not isinstance(driver, OperationAborter):
        return None
    try:
        _call("abort_operation", driver.abort_operation, str(operation_id))
    except DriverError as error:
        log.warning("could not abort operation %s: %s", operation_id, error)
        return None
    instance, _, destination = _route(action)
    try:
        where = _call("locate", driver.locate, instance)
    except DriverError:
        where = None
    if where == destination:
        return Outcome(ActionState.SUCCEEDED, f"migrated to {destination} before the abort")
    return Outcome(ActionState.CANCELLED, "aborted: the plan was cancelled")


def _settle_by_location(driver: CloudActions, action: Action, problem: str) -> Outcome:
    instance, _, destination = _route(action)
    try:
        where = _call("locate", driver.locate, instance)
    except DriverError as error:
        return _failed(f"{problem}; locate failed too: {error}")
    if where == destination:
        return Outcome(ActionState.SUCCEEDED, f"migrated to {destination} ({problem})")
    return _failed(problem)


def _route(action: Action) -> tuple[str, str, str]:
    # Action.instance/source/destination, read straight from the parameters: this
    # runs three times for every migration.
    p = action.parameters
    instance, source, destination = p.get("instance"), p.get("source"), p.get("destination")
    if instance is None or source is None or destination is None:
        raise KeyError("migrate needs instance, source and destination")
    return str(instance), str(source), str(destination)


def _misplaced(instance: str, where: str | None, expected: str) -> str:
    if where is None:
        return f"{instance} is gone"
    return f"{instance} is on {where}, expected on {expected}"
