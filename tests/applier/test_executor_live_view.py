"""The applier re-checks the live cloud just before each migration: a destination
that filled up, was disabled or left the cloud, an instance that is gone or moved
elsewhere, each stop the migration with the reason and skip its dependents; one
already on its destination counts as done. Across crashes and under random drift,
no host ever holds more than it may."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.driver import FakeDriver
from fakes.plans import migrate, run_to_end, saved_plan
from fakes.repositories import MemoryRepositories
from opendrs.applier import PlanExecutor
from opendrs.domain.action import Action, ActionState, ActionType, PlanLimits, PlanState
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import DriverError, NotFound
from opendrs.domain.host import Host, HostState
from opendrs.domain.instance import Flavor, Instance, InstanceState
from opendrs.domain.ports import HostOccupancy, LiveView
from opendrs.domain.ports import OperationState as Op

SMALL = Flavor("small", 2, 1024)
LARGE = Flavor("large", 4, 2048)


class CapacityCloud(FakeDriver):
    """A fake cloud whose hosts have Placement capacity: it records the worst
    over-commit it ever held (a migrating VM counts on both its hosts, as Nova's
    migration allocations do). It has no live view."""

    def __init__(
        self,
        hosts: Mapping[str, Host],
        flavors: Mapping[str, Flavor],
        placement: Mapping[str, str],
        **kw: object,
    ) -> None:
        super().__init__(placement, **kw)  # type: ignore[arg-type]
        self.hosts = dict(hosts)
        self.flavors = dict(flavors)
        self.instance_states: dict[str, InstanceState] = {}
        self.overfull: list[str] = []

    def start_migration(self, instance: str, destination: str, live: bool = True) -> str:
        operation = super().start_migration(instance, destination, live)
        self.audit(f"start {instance}→{destination}")
        return operation

    def used(self, host: str) -> tuple[int, int]:
        names = [n for n, h in self.placement.items() if h == host]
        names += [op.instance for op in self.running() if op.destination == host]
        return (
            sum(self.flavors[n].vcpus for n in names),
            sum(self.flavors[n].memory_mb for n in names),
        )

    def fits(self, host: str, flavor: Flavor) -> bool:
        vcpus, memory_mb = self.used(host)
        h = self.hosts[host]
        return (
            vcpus + flavor.vcpus <= h.allocatable_vcpus
            and memory_mb + flavor.memory_mb <= h.allocatable_memory_mb
        )

    def audit(self, when: str) -> None:
        for name, h in self.hosts.items():
            vcpus, memory_mb = self.used(name)
            if vcpus > h.allocatable_vcpus or memory_mb > h.allocatable_memory_mb:
                self.overfull.append(f"{name} holds {vcpus} vCPU, {memory_mb} MB after {when}")

    # drift: what Nova and people do meanwhile
    def boot(self, instance: str, host: str, flavor: Flavor) -> None:
        self.flavors[instance] = flavor
        self.placement[instance] = host

    def delete(self, instance: str) -> None:
        del self.placement[instance]

    def set_state(self, host: str, state: HostState, reason: str | None = None) -> None:
        self.hosts[host] = self.hosts[host].with_state(state, reason)


class LiveCloud(CapacityCloud):
    """The same cloud with a live view (LiveView)."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.views = 0

    def instance_now(self, instance: str) -> Instance | None:
        self.views += 1
        host = self.placement.get(instance)
        if host is None:
            return None
        state = self.instance_states.get(instance, InstanceState.ACTIVE)
        return Instance(instance, host, self.flavors[instance], state=state)

    def host_now(self, host: str) -> HostOccupancy:
        self.views += 1
        if host not in self.hosts:
            raise NotFound("host", host)
        on = tuple(
            Instance(n, host, self.flavors[n])
            for n, h in sorted(self.placement.items())
            if h == host
        )
        return HostOccupancy(self.hosts[host], on)


def hosts(*names: str, vcpus: int = 8, memory_mb: int = 8192) -> dict[str, Host]:
    return {n: Host(n, vcpus=vcpus, memory_mb=memory_mb) for n in names}


def sized(instance: str, source: str, destination: str, flavor: Flavor, *parents: Action) -> Action:
    action = migrate(instance, source, destination, *parents)
    p = {**action.parameters, "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb}
    return replace(action, parameters=p)


def cloud_of(cls: type[CapacityCloud] = LiveCloud) -> CapacityCloud:
    """h1 holds vm7 (large) and vm1; h2 (8 vCPU, 8 GB) holds vm2 and vm3 (small)."""
    return cls(
        hosts("h1", "h2", "h3"),
        {"vm7": LARGE, "vm1": SMALL, "vm2": SMALL, "vm3": SMALL},
        {"vm7": "h1", "vm1": "h1", "vm2": "h2", "vm3": "h2"},
        polls=2,
    )


def run(
    repo: MemoryRepositories,
    cloud: CapacityCloud,
    *actions: Action,
    limits: PlanLimits | None = None,
) -> list[Action]:
    plan = saved_plan(repo, *actions, limits=limits)
    executor = PlanExecutor(repo, cloud, ManualClock(0.0), limits)
    executor.start(plan.id)
    return list(run_to_end(executor, plan.id).actions)


def by_instance(actions: list[Action]) -> dict[str, Action]:
    return {a.instance or "": a for a in actions}


def test_a_destination_filled_meanwhile_refuses_the_move_saying_what_is_short() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.boot("nova-new", "h2", Flavor("boot", 2, 5120))  # h2 now uses 6 vCPU, 7168 MB
    seven = sized("vm7", "h1", "h2", LARGE)
    after = sized("vm1", "h1", "h3", SMALL, seven)
    done = by_instance(run(repo, cloud, seven, after))

    assert done["vm7"].state == ActionState.FAILED
    assert done["vm7"].message == (
        "h2 has 2 vCPU and 1024 MB RAM free, vm7 needs 4 vCPU and 2048 MB RAM "
        "(short by 2 vCPU and 1024 MB RAM); not moved"
    )
    assert done["vm1"].state == ActionState.SKIPPED
    assert "vm7" in done["vm1"].message and "failed" in done["vm1"].message
    assert cloud.started["vm7"] == 0 and cloud.started["vm1"] == 0
    assert repo.get_plan(done["vm7"].plan_id).state == PlanState.FAILED


def test_room_is_read_with_the_hosts_allocation_ratios_and_reservations() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    # 4 cores, 1 reserved, ratio 2: 6 vCPU; h2's vm2 and vm3 take 4, vm7 needs 4.
    cloud.hosts["h2"] = replace(
        cloud.hosts["h2"], vcpus=4, reserved_host_cpus=1, cpu_allocation_ratio=2.0
    )
    [refused] = run(repo, cloud, sized("vm7", "h1", "h2", LARGE))
    assert refused.state == ActionState.FAILED
    assert refused.message.startswith("h2 has 2 vCPU and 6144 MB RAM free, vm7 needs 4 vCPU")

    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.hosts["h2"] = replace(cloud.hosts["h2"], vcpus=4, cpu_allocation_ratio=2.0)
    [moved] = run(repo, cloud, sized("vm7", "h1", "h2", LARGE))
    assert moved.state == ActionState.SUCCEEDED
    assert cloud.placement["vm7"] == "h2"


def test_a_disabled_destination_refuses_the_move_with_its_reason() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.set_state("h2", HostState.MAINTENANCE, "firmware")
    [refused] = run(repo, cloud, sized("vm1", "h1", "h2", SMALL))
    assert refused.state == ActionState.FAILED
    assert refused.message == "h2 is maintenance (firmware); vm1 not moved there"
    assert cloud.started["vm1"] == 0


def test_a_destination_gone_from_the_cloud_refuses_the_move() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    [refused] = run(repo, cloud, sized("vm1", "h1", "h9", SMALL))
    assert refused.state == ActionState.FAILED
    assert refused.message == "destination h9 is no longer in the cloud; vm1 not moved"


def test_an_instance_deleted_or_moved_elsewhere_is_not_moved() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.delete("vm1")
    cloud.placement["vm7"] = "h3"
    done = by_instance(
        run(repo, cloud, sized("vm1", "h1", "h2", SMALL), sized("vm7", "h1", "h2", LARGE))
    )
    assert done["vm1"].state == ActionState.FAILED
    assert done["vm1"].message == "vm1 is gone; nothing to move to h2"
    assert done["vm7"].state == ActionState.FAILED
    assert done["vm7"].message == "vm7 is on h3, expected on source h1; not moved"
    assert sum(cloud.started.values()) == 0


def test_an_instance_that_cannot_migrate_now_is_not_moved() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.instance_states["vm1"] = InstanceState.ERROR
    [refused] = run(repo, cloud, sized("vm1", "h1", "h2", SMALL))
    assert refused.state == ActionState.FAILED
    assert (
        refused.message == "vm1 not moved: instance_state: the instance is error; it cannot migrate"
    )


def test_an_instance_already_on_its_destination_counts_as_done_and_moves_no_more() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.placement["vm1"] = "h2"
    first = sized("vm1", "h1", "h2", SMALL)
    then = sized("vm7", "h1", "h3", LARGE, first)
    done = by_instance(run(repo, cloud, first, then))
    assert done["vm1"].state == ActionState.SUCCEEDED
    assert done["vm1"].message == "vm1 is already on h2"
    assert done["vm7"].state == ActionState.SUCCEEDED
    assert cloud.started["vm1"] == 0 and cloud.moved["vm7"] == 1


def test_the_live_flavor_counts_not_the_size_the_plan_recorded() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.boot("filler", "h2", Flavor("f", 2, 1024))  # h2 has 2 vCPU left
    cloud.flavors["vm1"] = LARGE  # resized since the plan was made
    [refused] = run(repo, cloud, sized("vm1", "h1", "h2", SMALL))
    assert refused.state == ActionState.FAILED
    assert "vm1 needs 4 vCPU and 2048 MB RAM" in refused.message


def test_migrations_in_flight_to_the_destination_count_on_it() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.boot("filler", "h3", Flavor("f", 2, 1024))  # h3 has 6 vCPU left
    # Both ready at once: vm7 starts first and takes 4; vm1 (2) still fits, then a
    # third (another 2) would not.
    cloud.boot("vm4", "h1", SMALL)
    cloud.polls = 5
    done = by_instance(
        run(
            repo,
            cloud,
            sized("vm7", "h1", "h3", LARGE),
            sized("vm1", "h1", "h3", SMALL),
            sized("vm4", "h1", "h3", SMALL),
            limits=PlanLimits(max_per_destination=3, max_per_source=3),
        )
    )
    assert [done[n].state for n in ("vm7", "vm1", "vm4")] == [
        ActionState.SUCCEEDED,
        ActionState.SUCCEEDED,
        ActionState.FAILED,
    ]
    assert done["vm4"].message.startswith(
        "h3 has 0 vCPU and 4096 MB RAM free, counting 2 migration(s) on their way there"
    )
    assert cloud.overfull == []


def test_a_failing_live_view_is_a_transient_failure_retried_by_the_policy() -> None:
    class Flaky(LiveCloud):
        failures = 1

        def host_now(self, host: str) -> HostOccupancy:
            if self.failures:
                self.failures -= 1
                raise DriverError("hypervisor API timed out", transient=True)
            return super().host_now(host)

    repo = MemoryRepositories()
    cloud = Flaky(*_parts(cloud_of()), polls=1)
    plan = saved_plan(repo, sized("vm1", "h1", "h2", SMALL))
    clock = ManualClock(0.0)
    executor = PlanExecutor(repo, cloud, clock)
    executor.start(plan.id)
    executor.advance(plan.id)
    waiting = repo.get_plan(plan.id).actions[0]
    assert waiting.state == ActionState.ONGOING
    assert "cannot check the destination before moving: hypervisor API timed out" in waiting.message
    clock.set(60.0)
    done = run_to_end(executor, plan.id)
    assert done.state == PlanState.SUCCEEDED
    assert cloud.placement["vm1"] == "h2"


def _parts(cloud: CapacityCloud) -> tuple[dict[str, Host], dict[str, Flavor], dict[str, str]]:
    return dict(cloud.hosts), dict(cloud.flavors), dict(cloud.placement)


def test_without_a_live_view_only_the_location_is_checked() -> None:
    """The same drift without a live view: the move runs and overfills h2 (what the
    re-check is for)."""
    repo, cloud = MemoryRepositories(), cloud_of(CapacityCloud)
    assert not isinstance(cloud, LiveView)
    cloud.boot("nova-new", "h2", Flavor("boot", 2, 5120))
    [moved] = run(repo, cloud, sized("vm7", "h1", "h2", LARGE))
    assert moved.state == ActionState.SUCCEEDED
    assert cloud.overfull


def test_an_explicit_live_view_is_used_for_a_driver_without_one() -> None:
    repo, actions_only = MemoryRepositories(), cloud_of(CapacityCloud)
    view = LiveCloud(*_parts(actions_only))
    view.placement = actions_only.placement  # the same cloud, read through the view
    view.hosts["h2"] = view.hosts["h2"].with_state(HostState.DISABLED)
    plan = saved_plan(repo, sized("vm1", "h1", "h2", SMALL))
    executor = PlanExecutor(repo, actions_only, ManualClock(0.0), live=view)
    executor.start(plan.id)
    [refused] = run_to_end(executor, plan.id).actions
    assert refused.message == "h2 is disabled; vm1 not moved there"
    assert view.views == 2


# --- after a crash -------------------------------------------------------


def crashed_plan(repo: MemoryRepositories, *actions: Action) -> str:
    """A plan whose first action was journaled ONGOING by an executor that died
    before it asked the cloud anything."""
    plan = saved_plan(repo, *actions)
    repo.set_plan_state(plan.id, PlanState.PENDING)
    repo.set_plan_state(plan.id, PlanState.ONGOING)
    first = plan.actions[0].in_plan(plan.id)
    repo.journal_action(first.moved_to(ActionState.ONGOING, 1.0, "starting"))
    return plan.id


def test_resuming_after_a_crash_rechecks_the_destination_before_restarting() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    seven = sized("vm7", "h1", "h2", LARGE)
    plan_id = crashed_plan(repo, seven, sized("vm1", "h1", "h3", SMALL, seven))
    cloud.boot("meanwhile", "h2", Flavor("boot", 4, 1024))  # the crash lasted a while

    executor = PlanExecutor(repo, cloud, ManualClock(50.0))
    executor.resume()
    done = by_instance(list(run_to_end(executor, plan_id).actions))

    assert done["vm7"].state == ActionState.FAILED
    assert done["vm7"].message.startswith("h2 has 0 vCPU and 5120 MB RAM free, vm7 needs 4 vCPU")
    assert done["vm1"].state == ActionState.SKIPPED
    assert sum(cloud.started.values()) == 0
    assert [a.parameters.get("restarted") for a in repo.journal if a.instance == "vm7"][-1]


def test_resuming_after_a_crash_finds_a_finished_move_done() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    plan_id = crashed_plan(repo, sized("vm7", "h1", "h2", LARGE))
    cloud.placement["vm7"] = "h2"
    executor = PlanExecutor(repo, cloud, ManualClock(50.0))
    executor.resume()
    assert run_to_end(executor, plan_id).state == PlanState.SUCCEEDED
    assert cloud.started["vm7"] == 0


def test_a_refusal_survives_a_restart_and_nothing_runs_again() -> None:
    repo, cloud = MemoryRepositories(), cloud_of()
    cloud.set_state("h2", HostState.DISABLED)
    [refused] = run(repo, cloud, sized("vm1", "h1", "h2", SMALL))
    cloud.set_state("h2", HostState.ENABLED)
    executor = PlanExecutor(repo, cloud, ManualClock(99.0))
    executor.resume()
    executor.advance_all()
    assert repo.get_plan(refused.plan_id).action(refused.id).state == ActionState.FAILED
    assert sum(cloud.started.values()) == 0


# --- under random drift ----------------------------------------------------

HOSTS = ("h0", "h1", "h2", "h3")
FLAVORS = (Flavor("s", 1, 1024), Flavor("m", 2, 2048), Flavor("l", 4, 4096))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[LiveCloud, list[Action], list[tuple[str, int, int]]]:
    capacity = {h: draw(st.integers(4, 10)) for h in HOSTS}
    cloud = LiveCloud(
        {h: Host(h, vcpus=c, memory_mb=c * 1024) for h, c in capacity.items()}, {}, {}, polls=2
    )
    for n in range(draw(st.integers(1, 10))):
        flavor = draw(st.sampled_from(FLAVORS))
        fitting = [h for h in HOSTS if cloud.fits(h, flavor)]
        if fitting:
            cloud.boot(f"vm{n}", draw(st.sampled_from(fitting)), flavor)
    actions: list[Action] = []
    for name in sorted(cloud.placement):
        if not draw(st.booleans()):
            continue
        source = cloud.placement[name]
        destination = draw(st.sampled_from([h for h in HOSTS if h != source]))
        parents = (
            draw(st.lists(st.sampled_from(actions), max_size=2, unique_by=lambda a: a.id))
            if actions
            else []
        )
        actions.append(sized(name, source, destination, cloud.flavors[name], *parents))
    drift = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("boot", "delete", "disable", "enable", "move")),
                st.integers(0, 99),
                st.integers(0, 99),
            ),
            max_size=12,
        )
    )
    return cloud, actions, drift


def drift_once(cloud: LiveCloud, kind: str, a: int, b: int, serial: int) -> None:
    """Nova and people acting meanwhile; they respect capacity too (Nova's claims
    count migrations in flight), they just do not tell the plan."""
    flying = {op.instance for op in cloud.running()}
    idle = sorted(n for n in cloud.placement if n not in flying)
    host = HOSTS[a % len(HOSTS)]
    if kind == "boot":
        flavor = FLAVORS[b % len(FLAVORS)]
        if cloud.fits(host, flavor) and cloud.hosts[host].state == HostState.ENABLED:
            cloud.boot(f"new{serial}", host, flavor)
    elif kind == "delete" and idle:
        cloud.delete(idle[b % len(idle)])
    elif kind in ("disable", "enable"):
        cloud.set_state(host, HostState.DISABLED if kind == "disable" else HostState.ENABLED)
    elif kind == "move" and idle:
        name = idle[b % len(idle)]
        if cloud.placement[name] != host and cloud.fits(host, cloud.flavors[name]):
            cloud.placement[name] = host
    cloud.audit(f"drift {kind}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(1, 3))
def test_applying_a_plan_under_random_drift_never_overfills_a_host(
    scenario: tuple[LiveCloud, list[Action], list[tuple[str, int, int]]], parallel: int
) -> None:
    cloud, actions, drift = scenario
    if not actions:
        return
    repo = MemoryRepositories()
    limits = PlanLimits(max_per_source=parallel, max_per_destination=parallel, max_parallel=4)
    plan = saved_plan(repo, *actions, limits=limits)
    executor = PlanExecutor(repo, cloud, ManualClock(0.0))
    executor.start(plan.id)
    for step in range(200):
        if step < len(drift):
            drift_once(cloud, *drift[step], serial=step)
        state = executor.advance(plan.id).state
        if state in (PlanState.SUCCEEDED, PlanState.FAILED):
            break
    else:
        raise AssertionError("the plan did not end")
    assert cloud.overfull == []
    done = repo.get_plan(plan.id)
    for action in done.actions:
        assert action.type == ActionType.MIGRATE
        assert cloud.started[action.instance or ""] <= 1  # nothing moves twice
        if action.state == ActionState.SUCCEEDED:  # moved by the plan, or found there
            already = action.message == f"{action.instance} is already on {action.destination}"
            assert cloud.moved[action.instance or ""] == 1 or already
    assert not [op for op in cloud.running() if op.state == Op.RUNNING]


class Crash(Exception):
    """The process died."""


class CrashingRepositories(MemoryRepositories):
    """Dies just before or just after its `crash_at`-th write."""

    def __init__(self, crash_at: int, before: bool) -> None:
        super().__init__()
        self.writes, self.crash_at, self.before = 0, crash_at, before

    def _write(self, write: Callable[[], None]) -> None:
        self.writes += 1
        due = self.writes == self.crash_at
        if due and self.before:
            raise Crash(f"before write {self.writes}")
        write()
        if due:
            raise Crash(f"after write {self.writes}")

    def journal_action(self, action: Action) -> None:
        self._write(lambda: MemoryRepositories.journal_action(self, action))

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        self._write(lambda: MemoryRepositories.set_plan_state(self, plan_id, state, message))


def drifted_plan(repo: MemoryRepositories) -> tuple[LiveCloud, str]:
    """vm7 → h2 is refused (h2 filled since), vm1 waits on it; vm2 → h3 is free."""
    cloud = cloud_of()
    assert isinstance(cloud, LiveCloud)
    cloud.boot("nova-new", "h2", Flavor("boot", 2, 5120))
    seven = sized("vm7", "h1", "h2", LARGE)
    plan = saved_plan(
        repo, seven, sized("vm1", "h1", "h3", SMALL, seven), sized("vm2", "h2", "h3", SMALL)
    )
    return cloud, plan.id


def outcome_of(repo: MemoryRepositories, plan_id: str) -> tuple[PlanState, dict[str, ActionState]]:
    plan = repo.get_plan(plan_id)
    return plan.state, {a.instance or "": a.state for a in plan.actions}


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
@pytest.mark.parametrize("crash_at", range(1, 12))
def test_a_crash_at_any_write_ends_the_same_and_moves_nothing_twice(
    crash_at: int, before: bool
) -> None:
    calm = MemoryRepositories()
    calm_cloud, calm_id = drifted_plan(calm)
    executor = PlanExecutor(calm, calm_cloud, ManualClock(0.0))
    executor.start(calm_id)
    run_to_end(executor, calm_id)

    repo = CrashingRepositories(crash_at, before)
    cloud, plan_id = drifted_plan(repo)
    clock = ManualClock(0.0)
    try:
        executor = PlanExecutor(repo, cloud, clock)
        executor.start(plan_id)
        run_to_end(executor, plan_id)
    except Crash:
        repo.crash_at = 0
        clock.set(10.0)
        executor = PlanExecutor(repo, cloud, clock)
        executor.resume()
        if repo.get_plan(plan_id).state == PlanState.RECOMMENDED:
            executor.start(plan_id)  # it died before the plan was approved
        run_to_end(executor, plan_id)
    assert outcome_of(repo, plan_id) == outcome_of(calm, calm_id)
    assert outcome_of(repo, plan_id)[1] == {
        "vm7": ActionState.FAILED,
        "vm1": ActionState.SKIPPED,
        "vm2": ActionState.SUCCEEDED,
    }
    assert cloud.started == {"vm2": 1}
    assert cloud.overfull == []
