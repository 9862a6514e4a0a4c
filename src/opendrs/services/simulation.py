"""Faster-than-real-time replay of a PlanetLab day: the data centre of the chosen
profile, the consolidation strategy of the decision engine, the planner and the
journaled applier, stepped every 300 s of simulated time; returns the figures."""

from __future__ import annotations

import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np

from opendrs.applier.executor import PlanExecutor
from opendrs.cloud.sim.cloudsim.driver import DataCentreActions
from opendrs.cloud.sim.cloudsim.engine import OFFSET, PROFILES, STEP_SECONDS, DataCentre
from opendrs.cloud.sim.cloudsim.hardware import HOST_RAM_MB, build_fleet
from opendrs.cloud.sim.cloudsim.initial import creation_snapshot, first_fit
from opendrs.cloud.sim.cloudsim.plans import MemoryPlans
from opendrs.cloud.sim.traces import Trace, load_day
from opendrs.decision.consolidation.policies import (
    GOAL,
    BeloglazovBuyya,
    StaticPlacement,
    parse_policy,
)
from opendrs.decision.consolidation.snapshot import IntArray, Snapshot
from opendrs.decision.registry import StrategyRegistry
from opendrs.domain.action import Action, ActionPlan, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.cluster import Cluster
from opendrs.domain.errors import InvalidInput, PlanningError
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance
from opendrs.domain.solution import Solution
from opendrs.planner import build_plan

DAYS = (
    "20110303",
    "20110306",
    "20110309",
    "20110322",
    "20110325",
    "20110403",
    "20110409",
    "20110411",
    "20110412",
    "20110420",
)
TRACE_DIR_ENV = "OPENDRS_TRACE_DIR"
DEFAULT_HOSTS = 800
PLAN_CHUNK = 16
LAST_STEP = 287
# Everything a round decides starts at once, as in CloudSim.
UNLIMITED = PlanLimits(
    max_per_source=1_000_000, max_per_destination=1_000_000, max_parallel=1_000_000
)
RESULT_KEYS = (
    "day",
    "policy",
    "profile",
    "hosts",
    "vms",
    "energy_kwh",
    "migrations",
    "slatah",
    "pdm",
    "slav",
    "esv",
    "overall_sla_violation",
    "host_shutdowns",
    "wall_seconds",
)

Progress = Callable[[int, int], None]
"""Called with (steps done, steps in all)."""


class SnapshotStrategy(Protocol):
    def execute_snapshot(self, snapshot: Snapshot) -> Solution: ...

    def initial_placement(self, snapshot: Snapshot) -> IntArray | None: ...


def registry() -> StrategyRegistry:
    from opendrs.decision.consolidation.opendrs_policy import OpendrsConsolidation

    return StrategyRegistry([BeloglazovBuyya, OpendrsConsolidation, StaticPlacement])


def trace_dir(override: Path | None = None) -> Path:
    """`override`, else $OPENDRS_TRACE_DIR, else shared/data/planetlab beside the
    working directory or this checkout (the same search as the demo's)."""
    if override is not None:
        return override
    if os.environ.get(TRACE_DIR_ENV):
        return Path(os.environ[TRACE_DIR_ENV])
    for start in (Path.cwd(), Path(__file__).resolve()):
        for parent in (start, *start.parents):
            candidate = parent / "shared" / "data" / "planetlab"
            if candidate.is_dir():
                return candidate
    raise InvalidInput(
        f"PlanetLab traces not found; pass --traces or set ${TRACE_DIR_ENV}", field="traces"
    )


@dataclass
class Run:
    """One simulated day, kept after the run for plots and tests."""

    centre: DataCentre
    result: dict[str, Any]
    planning_failures: int = 0


def simulate_day(
    day: str,
    policy: str,
    profile: str = "realistic",
    hosts: int | None = None,
    progress: Progress | None = None,
    *,
    traces: Path | None = None,
    vms: int | None = None,
    steps: int = LAST_STEP,
) -> dict[str, Any]:
    """The figures of one day (keys RESULT_KEYS; fractions, not percents)."""
    return run_day(
        day, policy, profile, hosts, progress, traces=traces, vms=vms, steps=steps
    ).result


def run_day(
    day: str,
    policy: str,
    profile: str = "realistic",
    hosts: int | None = None,
    progress: Progress | None = None,
    *,
    traces: Path | None = None,
    vms: int | None = None,
    steps: int = LAST_STEP,
) -> Run:
    started = time.perf_counter()
    if profile not in PROFILES:
        raise InvalidInput(
            f"unknown profile {profile!r} (known: {', '.join(PROFILES)})", field="profile"
        )
    host_count = DEFAULT_HOSTS if hosts is None else hosts
    if host_count < 1:
        raise InvalidInput(f"needs at least one host, got {host_count}", field="hosts")
    if not 1 <= steps <= LAST_STEP:
        raise InvalidInput(f"steps must be within 1..{LAST_STEP}, got {steps}", field="steps")
    loaded = load_day(trace_dir(traces), day)
    if vms is not None:
        loaded = _scaled(loaded, vms)
    matrix = np.vstack([t.values for t in loaded])
    fleet = build_fleet(host_count, tuple(t.name for t in loaded))
    chosen = PROFILES[profile]
    centre = DataCentre(fleet, matrix, chosen)
    name, parameters = parse_policy(policy)
    if chosen.explicit_power and name != StaticPlacement.name:
        parameters = {**parameters, "power_changes": True}
    strategy = registry().create(GOAL, name, parameters)
    if not hasattr(strategy, "execute_snapshot"):
        raise InvalidInput(f"strategy {name!r} cannot run in the simulator", field="policy")
    runner: SnapshotStrategy = strategy  # type: ignore[assignment]
    placement = runner.initial_placement(
        creation_snapshot(fleet, book_nominal=not chosen.explicit_power)
    )
    if placement is None:
        placement = first_fit(fleet)
    elif chosen.explicit_power:
        # A VM the policy could not place at creation (CloudSim lets its creation fail)
        # is placed by the cloud's own first fit: real clouds do not drop VMs.
        placement = first_fit(fleet, placement)
    centre.place(placement)

    clock = ManualClock(0.0)
    plans = MemoryPlans()
    actions = DataCentreActions(centre)
    executor = PlanExecutor(plans, actions, clock, limits=UNLIMITED)
    inventory = _Inventory()
    with _old_objects_left_alone():
        chained, failures = _run_steps(
            centre, runner, executor, plans, clock, inventory, day, steps, progress
        )
    centre.finish()
    if not chosen.explicit_power:
        # CloudSim starts two migrations for a VM placed on a host it then empties.
        centre.totals.migrations += chained
    result = _figures(
        day,
        policy,
        profile,
        centre,
        name == StaticPlacement.name and policy.lower() == "npa",
        steps,
    )
    result["wall_seconds"] = round(time.perf_counter() - started, 3)
    return Run(centre, result, failures)


def _run_steps(
    centre: DataCentre,
    runner: SnapshotStrategy,
    executor: PlanExecutor,
    plans: MemoryPlans,
    clock: ManualClock,
    inventory: _Inventory,
    day: str,
    steps: int,
    progress: Progress | None,
) -> tuple[int, int]:
    """Steps 1..`steps`: sample, decide, plan, apply. Returns the chained migrations
    and the plans that could not be made."""
    failures = 0
    chained = 0
    leftovers = 0
    for k in range(1, steps + 1):
        centre.step(k)
        clock.set(centre.now)
        solution = runner.execute_snapshot(centre.snapshot(k))
        chained += int(solution.efficacy.get("chained_migrations", 0.0))
        running: list[str] = []
        if not solution.empty:
            try:
                plan = build_plan(
                    solution,
                    _cluster_for(centre, solution, inventory),
                    UNLIMITED,
                    f"sim-{day}-{k}",
                    centre.now,
                )
            except PlanningError:
                failures += 1
                plan = None
            if plan is not None and plan.actions:
                for part in split_plan(plan, PLAN_CHUNK):
                    plans.save_plan(part)
                    executor.start(part.id)
                    executor.advance(part.id)
                    running.append(part.id)
                centre.record_migration_starts()
        next_step = (k + 1) * STEP_SECONDS + OFFSET
        centre.complete_migrations(next_step - 1e-6)
        if running:
            clock.set(centre.now)
            for plan_id in running:
                finished = executor.advance(plan_id)
                if finished.state in (PlanState.ONGOING, PlanState.CANCELLING):
                    leftovers += 1
                plans.forget(plan_id)
        if progress is not None:
            progress(k, steps)
    return chained, failures


@contextmanager
def _old_objects_left_alone() -> Iterator[None]:
    """Keep the collector's full passes off what existed before the run (modules,
    fleet, strategy): a day makes enough objects for a few full passes, and each
    would walk all of that again, about a twentieth of a day's CPU, to find nothing.
    They are handed back to the collector afterwards, so nothing is kept for good;
    when something else has frozen objects already, the collector is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def split_plan(plan: ActionPlan, size: int) -> list[ActionPlan]:
    """The plan as independent plans of about `size` actions: actions linked by a
    dependency always stay together, so each part is as safe as the whole."""
    if not any(a.parents for a in plan.actions):
        # Every action is a group of its own: the parts are runs of `size` of them.
        if len(plan.actions) <= max(size, 1):
            return [plan]
        return _parts(plan, _runs(plan.actions, max(size, 1)))
    return _parts(plan, _grouped(plan, size))


def _runs(actions: Sequence[Action], size: int) -> list[Sequence[Action]]:
    return [actions[start : start + size] for start in range(0, len(actions), size)]


def _grouped(plan: ActionPlan, size: int) -> list[Sequence[Action]]:
    """The actions in parts of about `size`, each linked group whole, in order."""
    index = {a.id: i for i, a in enumerate(plan.actions)}
    parent = list(range(len(plan.actions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, action in enumerate(plan.actions):
        for p in action.parents:
            parent[root(i)] = root(index[p])
    groups: dict[int, list[Action]] = {}
    for i, action in enumerate(plan.actions):
        groups.setdefault(root(i), []).append(action)
    parts: list[list[Action]] = [[]]
    for members in groups.values():
        if parts[-1] and len(parts[-1]) + len(members) > size:
            parts.append([])
        parts[-1].extend(members)
    return list(parts)


def _parts(plan: ActionPlan, parts: Sequence[Sequence[Action]]) -> list[ActionPlan]:
    if len(parts) == 1:
        return [plan]
    return [
        ActionPlan(
            audit_id=plan.audit_id,
            actions=tuple(members),
            efficacy=plan.efficacy,
            message=plan.message,
            created_at=plan.created_at,
            limits=plan.limits,
        )
        for members in parts
    ]


def _scaled(loaded: list[Trace], vms: int) -> list[Trace]:
    """`vms` traces: the day's, repeated in order as often as needed (copies renamed,
    since VM names must stay unique)."""
    if vms < 1:
        raise InvalidInput(f"needs at least one VM, got {vms}", field="vms")
    count = len(loaded)
    return [
        loaded[i % count]
        if i < count
        else Trace(f"{loaded[i % count].name}#{i // count}", loaded[i % count].values)
        for i in range(vms)
    ]


class _Inventory:
    """Domain objects for the planner, made once per VM and host placement, and once
    per host and power state (they are immutable, and a day asks for the same ones
    hundreds of thousands of times)."""

    def __init__(self) -> None:
        # By vm × hosts + host: one int key per placement, cheaper than a pair; each
        # with its name, so a cluster's mapping is built in one C-level pass.
        self._instances: dict[int, tuple[str, Instance]] = {}
        self._flavors: dict[int, Flavor] = {}
        self._hosts: dict[tuple[int, bool], Host] = {}
        # Each VM's entry for the host it was last asked on, and that host (-1: none
        # yet): most VMs stay put between rounds, and a list read by position is
        # cheaper than a look-up in the table of every placement ever met.
        self._current: list[tuple[str, Instance] | None] = []
        self._current_host: IntArray = np.empty(0, dtype=np.int64)

    def _named(self, centre: DataCentre, vm: int, host: int) -> tuple[str, Instance]:
        key = vm * centre.fleet.hosts + host
        found = self._instances.get(key)
        if found is None:
            ram = int(centre.fleet.vm_memory_mb[vm])
            flavor = self._flavors.get(ram)
            if flavor is None:
                flavor = self._flavors[ram] = Flavor(f"cloudsim.{ram}", 1, ram)
            name = centre.fleet.vm_names[vm]
            found = (name, Instance(name, centre.fleet.host_names[host], flavor))
            self._instances[key] = found
        return found

    def instances(self, centre: DataCentre, vms: IntArray, hosts: IntArray) -> dict[str, Instance]:
        """The instance of each pair of `vms` and `hosts` (made once per placement),
        by name, in their order."""
        if self._current_host.size != centre.fleet.vms:
            self._current = [None] * centre.fleet.vms
            self._current_host = np.full(centre.fleet.vms, -1, dtype=np.int64)
        current = self._current
        changed = np.flatnonzero(self._current_host[vms] != hosts)
        if changed.size:
            moved_vms, moved_to = vms[changed], hosts[changed]
            for vm, host in zip(moved_vms.tolist(), moved_to.tolist(), strict=True):
                current[vm] = self._named(centre, vm, host)
            self._current_host[moved_vms] = moved_to
        if vms.size == 1:
            return dict([cast("tuple[str, Instance]", current[int(vms[0])])])
        if vms.size == 0:
            return {}
        return dict(cast("tuple[tuple[str, Instance], ...]", itemgetter(*vms.tolist())(current)))

    def host(self, centre: DataCentre, h: int, enabled: bool) -> Host:
        found = self._hosts.get((h, enabled))
        if found is None:
            ram_ratio = 1.0 if centre.profile.reserve_memory else 1_000_000.0
            found = Host(
                name=centre.fleet.host_names[h],
                vcpus=2,
                memory_mb=int(HOST_RAM_MB),
                cpu_allocation_ratio=1_000_000.0,
                ram_allocation_ratio=ram_ratio,
                state=HostState.ENABLED if enabled else HostState.OFF,
            )
            self._hosts[(h, enabled)] = found
        return found


def _cluster_for(centre: DataCentre, solution: Solution, inventory: _Inventory) -> Cluster:
    """The part of the cluster the plan touches: its hosts and every VM on them."""
    involved = {m.source for m in solution.moves} | {m.destination for m in solution.moves}
    involved |= {c.host for c in solution.host_changes}
    index = np.array(sorted(centre.host_index(h) for h in involved), dtype=np.int64)
    always_on = not centre.profile.explicit_power
    on = centre.host_on
    hosts = [inventory.host(centre, h, bool(always_on or on[h])) for h in index.tolist()]
    touched = np.zeros(centre.fleet.hosts, dtype=np.bool_)
    touched[index] = True
    # A VM that is not alive may have no host (-1): the mask reads some host for it,
    # and `vm_alive` drops it.
    on_them = np.flatnonzero(centre.vm_alive & touched[centre.vm_host])
    where = centre.vm_host[on_them].astype(np.int64)
    instances = inventory.instances(centre, on_them.astype(np.int64), where)
    return Cluster(hosts={h.name: h for h in hosts}, instances=instances)


def _figures(
    day: str, policy: str, profile: str, centre: DataCentre, npa: bool, steps: int
) -> dict[str, Any]:
    t = centre.totals
    if npa:
        # CloudSim's non-power-aware data centre charges every host its peak all along.
        energy_j = float(centre.fleet.host_power[:, -1].sum()) * (steps * STEP_SECONDS + OFFSET)
    else:
        energy_j = t.energy_j
    energy = energy_j / 3.6e6
    slatah = t.violation_seconds / t.active_seconds if t.active_seconds else 0.0
    pdm = t.migration_loss_mi / t.requested_mi if t.requested_mi else 0.0
    slav = slatah * pdm
    overall = (t.requested_mi - t.allocated_mi) / t.requested_mi if t.requested_mi else 0.0
    return {
        "day": day,
        "policy": policy,
        "profile": profile,
        "hosts": centre.fleet.hosts,
        "vms": int(centre.vm_created),
        "energy_kwh": round(energy, 4),
        "migrations": t.migrations,
        "slatah": slatah,
        "pdm": pdm,
        "slav": slav,
        "esv": energy * slav,
        "overall_sla_violation": overall,
        "host_shutdowns": t.shutdowns,
        "wall_seconds": 0.0,
    }


def simulate_all_days(
    policy: str,
    profile: str = "realistic",
    hosts: int | None = None,
    progress: Progress | None = None,
    *,
    days: Sequence[str] = DAYS,
    traces: Path | None = None,
) -> dict[str, Any]:
    """Every day's figures plus the mean and standard deviation of each number."""
    results = [simulate_day(day, policy, profile, hosts, progress, traces=traces) for day in days]
    return {
        "days": results,
        "mean": _summary(results, statistics.fmean),
        "stdev": _summary(results, _stdev),
    }


def _stdev(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def _summary(
    results: Sequence[Mapping[str, Any]], reduce: Callable[[Sequence[float]], float]
) -> dict[str, float]:
    numeric = [k for k in RESULT_KEYS if isinstance(results[0][k], int | float) and k != "hosts"]
    return {k: reduce([float(r[k]) for r in results]) for k in numeric}


def peak_memory_mb(call: Callable[[], object]) -> tuple[object, float]:
    """Run `call` under tracemalloc; its result and the peak of Python allocations."""
    tracemalloc.start()
    try:
        value = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, peak / 1e6
