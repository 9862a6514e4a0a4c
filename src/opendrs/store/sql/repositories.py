"""SqlStore: the cluster, alarm, audit, plan and evacuation repositories of domain/ports.py on
one SQL database. Every call is its own short transaction, so a killed process
loses at most the call in flight."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Executable, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from opendrs.domain.action import Action, ActionPlan, ActionState, PlanState
from opendrs.domain.alarm import Alarm, AlarmState, AlarmTransition
from opendrs.domain.audit import Audit, AuditState
from opendrs.domain.clock import Clock, WallClock
from opendrs.domain.errors import InvalidInput, NotFound
from opendrs.domain.evacuation import EvacuationMark
from opendrs.domain.host import Host
from opendrs.domain.instance import Instance, ServerGroup
from opendrs.store.sql import rows
from opendrs.store.sql import tables as t
from opendrs.store.sql.database import Database

# Keeps IN (...) lists well under every backend's limit on bound parameters.
_CHUNK = 500


class JournalEntry(NamedTuple):
    """One journal_action call, as the applier made it."""

    action_id: str
    state: ActionState
    message: str
    time: float


class SqlStore:
    """ClusterRepository, AlarmRepository, AuditRepository, PlanRepository and
    EvacuationRepository at once.

    `clock` stamps journal entries and `updated_at`: pass the process's clock so
    a simulation journals in simulated time."""

    def __init__(self, database: Database, clock: Clock | None = None) -> None:
        self._db = database
        self._clock: Clock = clock or WallClock()

    # --- cluster ---------------------------------------------------------

    def upsert_hosts(self, hosts: Sequence[Host], fields: Collection[str] | None = None) -> None:
        if not hosts:
            return
        latest, metrics = _collapse(hosts)
        now = self._clock.now()
        # The free columns follow from capacity and use; metrics are merged below.
        columns = None if fields is None else {*fields, *rows.HOST_DERIVED}
        with self._db.transaction(write=True) as conn:
            stored = self._stored_metrics(conn, t.hosts, list(latest))
            values = [
                rows.host_row(host, {**stored.get(name, {}), **metrics[name]}, now)
                for name, host in latest.items()
            ]
            conn.execute(self._upsert(t.hosts, ("name",), columns), values)

    def upsert_instances(self, instances: Sequence[Instance]) -> None:
        if not instances:
            return
        latest, metrics = _collapse(instances)
        now = self._clock.now()
        with self._db.transaction(write=True) as conn:
            stored = self._stored_metrics(conn, t.instances, list(latest))
            values = [
                rows.instance_row(instance, {**stored.get(name, {}), **metrics[name]}, now)
                for name, instance in latest.items()
            ]
            conn.execute(self._upsert(t.instances, ("name",)), values)

    def remove_instances_not_in(self, names: Sequence[str]) -> int:
        keep = set(names)
        with self._db.transaction(write=True) as conn:
            stored = conn.execute(select(t.instances.c.name)).scalars().all()
            gone = [name for name in stored if name not in keep]
            for chunk in _chunks(gone):
                conn.execute(delete(t.instances).where(t.instances.c.name.in_(chunk)))
        return len(gone)

    def upsert_groups(self, groups: Sequence[ServerGroup]) -> None:
        if not groups:
            return
        latest = {group.name: rows.group_row(group) for group in groups}
        with self._db.transaction(write=True) as conn:
            conn.execute(self._upsert(t.server_groups, ("name",)), list(latest.values()))

    def update_metrics(self, entity: str, metrics: dict[str, float]) -> None:
        """Merge metrics into the host or instance named `entity`; unknown names are
        ignored (the inventory has not seen them yet)."""
        self.update_many_metrics({entity: metrics})

    def update_many_metrics(self, latest: Mapping[str, Mapping[str, float]]) -> None:
        """`update_metrics` for many entities in one transaction (one poll's worth)."""
        values = {e: rows.metric_values(dict(m), e) for e, m in latest.items() if m}
        if not values:
            return
        now = self._clock.now()
        with self._db.transaction(write=True) as conn:
            for table in (t.hosts, t.instances):
                current = conn.execute(
                    select(table.c.name, table.c.metrics)
                    .where(table.c.name.in_(list(values)))
                    .with_for_update()
                ).all()
                if current:
                    conn.execute(
                        update(table)
                        .where(table.c.name == bindparam("entity"))
                        .values(metrics=bindparam("merged"), updated_at=now),
                        [{"entity": n, "merged": {**m, **values[n]}} for n, m in current],
                    )

    def get_host(self, name: str) -> Host:
        with self._db.transaction() as conn:
            row = conn.execute(select(t.hosts).where(t.hosts.c.name == name)).mappings().first()
        if row is None:
            raise NotFound("host", name)
        return rows.host_from(row)

    def list_hosts(self) -> list[Host]:
        with self._db.transaction() as conn:
            found = conn.execute(select(t.hosts)).mappings().all()
        # Sorted here, not by SQL, so every backend's collation gives Python's order.
        return sorted((rows.host_from(row) for row in found), key=lambda h: h.name)

    def list_instances(self, host: str | None = None) -> list[Instance]:
        query = select(t.instances)
        if host is not None:
            query = query.where(t.instances.c.host == host)
        with self._db.transaction() as conn:
            found = conn.execute(query).mappings().all()
        return sorted((rows.instance_from(row) for row in found), key=lambda i: i.name)

    def list_groups(self) -> list[ServerGroup]:
        with self._db.transaction() as conn:
            found = conn.execute(select(t.server_groups)).mappings().all()
        return sorted((rows.group_from(row) for row in found), key=lambda g: g.name)

    # --- alarms ----------------------------------------------------------

    def record(self, transition: AlarmTransition) -> None:
        with self._db.transaction(write=True) as conn:
            conn.execute(insert(t.alarm_history).values(rows.transition_row(transition)))
            conn.execute(
                self._upsert(t.alarms, ("rule", "entity")).values(rows.alarm_row(transition))
            )

    def list_alarms(self, include_ok: bool = False) -> list[Alarm]:
        query = select(t.alarms).order_by(t.alarms.c.seq)
        if not include_ok:
            query = query.where(t.alarms.c.state != AlarmState.OK.value)
        with self._db.transaction() as conn:
            return [rows.alarm_from(row) for row in conn.execute(query).mappings()]

    def history(self, limit: int = 100) -> list[AlarmTransition]:
        query = select(t.alarm_history).order_by(t.alarm_history.c.seq.desc()).limit(_limit(limit))
        with self._db.transaction() as conn:
            return [rows.transition_from(row) for row in conn.execute(query).mappings()]

    # --- audits ----------------------------------------------------------

    def save_audit(self, audit: Audit) -> None:
        with self._db.transaction(write=True) as conn:
            conn.execute(self._upsert(t.audits, ("id",)).values(rows.audit_row(audit)))

    def get_audit(self, audit_id: str) -> Audit:
        with self._db.transaction() as conn:
            row = conn.execute(select(t.audits).where(t.audits.c.id == audit_id)).mappings().first()
        if row is None:
            raise NotFound("audit", audit_id)
        return rows.audit_from(row)

    def list_audits(self, limit: int = 100) -> list[Audit]:
        query = (
            select(t.audits)
            .order_by(t.audits.c.created_at.desc(), t.audits.c.seq)
            .limit(_limit(limit))
        )
        with self._db.transaction() as conn:
            return [rows.audit_from(row) for row in conn.execute(query).mappings()]

    def list_scheduled_audits(self) -> list[Audit]:
        query = (
            select(t.audits)
            .where(t.audits.c.next_run_at.is_not(None))
            .order_by(t.audits.c.created_at, t.audits.c.seq)
        )
        with self._db.transaction() as conn:
            return [rows.audit_from(row) for row in conn.execute(query).mappings()]

    def claim_audit_run(self, audit_id: str, due: float, ran: Audit) -> bool:
        # Compare and set: a suspend, a cancel or another runner since the read wins.
        with self._db.transaction(write=True) as conn:
            result = conn.execute(
                update(t.audits)
                .where(
                    t.audits.c.id == audit_id,
                    t.audits.c.state == AuditState.ONGOING.value,
                    t.audits.c.next_run_at == due,
                )
                .values(last_run_at=ran.last_run_at, next_run_at=ran.next_run_at)
            )
        return bool(result.rowcount)

    def change_audit(
        self, audit_id: str, state: AuditState | None = None, message: str | None = None
    ) -> Audit:
        with self._db.transaction(write=True) as conn:
            row = (
                conn.execute(select(t.audits).where(t.audits.c.id == audit_id).with_for_update())
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("audit", audit_id)
            audit = rows.audit_from(row)
            if state is not None:
                audit = audit.moved_to(state)
            if message is not None:
                audit = replace(audit, message=message)
            conn.execute(
                update(t.audits)
                .where(t.audits.c.id == audit_id)
                .values(
                    state=audit.state.value, message=audit.message, next_run_at=audit.next_run_at
                )
            )
        return audit

    # --- plans -----------------------------------------------------------

    def save_plan(self, plan: ActionPlan) -> None:
        """Store the plan and exactly its actions, in order (replacing earlier ones)."""
        seen: set[str] = set()
        for action in plan.actions:
            if action.id in seen:
                raise InvalidInput(
                    f"action {action.id!r} appears twice in plan {plan.id!r}", field="actions"
                )
            seen.add(action.id)
        with self._db.transaction(write=True) as conn:
            conn.execute(self._upsert(t.action_plans, ("id",)).values(rows.plan_row(plan)))
            conn.execute(delete(t.actions).where(t.actions.c.plan_id == plan.id))
            if plan.actions:
                conn.execute(
                    insert(t.actions),
                    [rows.action_row(a, plan.id, n) for n, a in enumerate(plan.actions)],
                )

    def get_plan(self, plan_id: str) -> ActionPlan:
        with self._db.transaction() as conn:
            found = self._plans(conn, select(t.action_plans).where(t.action_plans.c.id == plan_id))
        if not found:
            raise NotFound("action plan", plan_id)
        return found[0]

    def list_plans(
        self, states: Sequence[PlanState] | None = None, limit: int = 100
    ) -> list[ActionPlan]:
        query = (
            select(t.action_plans)
            .order_by(t.action_plans.c.created_at.desc(), t.action_plans.c.seq)
            .limit(_limit(limit))
        )
        if states is not None:
            query = query.where(t.action_plans.c.state.in_([PlanState(s).value for s in states]))
        with self._db.transaction() as conn:
            return self._plans(conn, query)

    def set_plan_state(self, plan_id: str, state: PlanState, message: str = "") -> None:
        values: dict[str, Any] = {"state": PlanState(state).value}
        if message:
            values["message"] = message
        with self._db.transaction(write=True) as conn:
            result = conn.execute(
                update(t.action_plans).where(t.action_plans.c.id == plan_id).values(values)
            )
            if result.rowcount == 0:
                raise NotFound("action plan", plan_id)

    def journal_action(self, action: Action) -> None:
        """Update the action in its plan and append the change to the journal, in one
        transaction. Raises NotFound when the plan or the action in it is unknown."""
        now = self._clock.now()
        with self._db.transaction(write=True) as conn:
            result = conn.execute(
                update(t.actions)
                .where(t.actions.c.plan_id == action.plan_id, t.actions.c.id == action.id)
                .values(rows.action_values(action))
            )
            if result.rowcount == 0:
                if self._plan_missing(conn, action.plan_id):
                    raise NotFound("action plan", action.plan_id)
                raise NotFound("action", action.id)
            conn.execute(
                insert(t.action_journal).values(
                    plan_id=action.plan_id,
                    action_id=action.id,
                    state=action.state.value,
                    message=action.message,
                    time=now,
                )
            )

    def journal(self, plan_id: str) -> list[JournalEntry]:
        """Every journal_action call for the plan, oldest first."""
        query = (
            select(
                t.action_journal.c.action_id,
                t.action_journal.c.state,
                t.action_journal.c.message,
                t.action_journal.c.time,
            )
            .where(t.action_journal.c.plan_id == plan_id)
            .order_by(t.action_journal.c.seq)
        )
        with self._db.transaction() as conn:
            if self._plan_missing(conn, plan_id):
                raise NotFound("action plan", plan_id)
            found = conn.execute(query).all()
        return [JournalEntry(r.action_id, ActionState(r.state), r.message, r.time) for r in found]

    # --- leases ----------------------------------------------------------

    def acquire_leases(self, owner: str, resources: Sequence[str]) -> dict[str, str]:
        """LeaseRepository: all of `resources` for `owner` in one transaction, or none
        (returns who holds the busy ones)."""
        wanted = sorted(set(resources))
        now = self._clock.now()
        try:
            with self._db.transaction(write=True) as conn:
                owners = self._lease_owners(conn, wanted)
                held = {r: o for r, o in owners.items() if o != owner}
                if held:
                    raise _Busy(held)
                fresh = [r for r in wanted if r not in owners]
                if fresh:
                    conn.execute(
                        insert(t.leases),
                        [{"resource": r, "owner": owner, "acquired_at": now} for r in fresh],
                    )
        except _Busy as busy:
            return busy.held
        except InvalidInput:
            # Another owner inserted one of them between our read and our write (the
            # primary key refused it): report who won.
            with self._db.transaction() as conn:
                owners = self._lease_owners(conn, wanted)
            held = {r: o for r, o in owners.items() if o != owner}
            if not held:
                raise
            return held
        return {}

    def release_leases(self, owner: str) -> int:
        with self._db.transaction(write=True) as conn:
            result = conn.execute(delete(t.leases).where(t.leases.c.owner == owner))
        return int(result.rowcount or 0)

    def list_leases(self) -> dict[str, str]:
        with self._db.transaction() as conn:
            found = conn.execute(select(t.leases.c.resource, t.leases.c.owner)).all()
        return {r.resource: r.owner for r in found}

    @staticmethod
    def _lease_owners(conn: Connection, resources: Sequence[str]) -> dict[str, str]:
        """{resource: owner} of those of `resources` that are leased."""
        owners: dict[str, str] = {}
        for chunk in _chunks(resources):
            query = select(t.leases.c.resource, t.leases.c.owner).where(
                t.leases.c.resource.in_(chunk)
            )
            owners.update({row.resource: row.owner for row in conn.execute(query)})
        return owners

    # --- evacuation marks -------------------------------------------------

    def record_evacuations(self, marks: Sequence[EvacuationMark]) -> None:
        if not marks:
            return
        # The last mark of an instance given twice wins, as recording one by one would.
        latest = {mark.instance: rows.evacuation_row(mark) for mark in marks}
        with self._db.transaction(write=True) as conn:
            conn.execute(self._upsert(t.evacuation_marks, ("instance",)), list(latest.values()))

    def list_evacuations(self, host: str | None = None) -> list[EvacuationMark]:
        query = select(t.evacuation_marks)
        if host is not None:
            query = query.where(t.evacuation_marks.c.host == host)
        with self._db.transaction() as conn:
            found = conn.execute(query).mappings().all()
        return sorted((rows.evacuation_from(row) for row in found), key=lambda m: m.instance)

    def clear_evacuations(self, instances: Sequence[str], host: str | None = None) -> int:
        names = sorted(set(instances))
        cleared = 0
        with self._db.transaction(write=True) as conn:
            for chunk in _chunks(names):
                statement = delete(t.evacuation_marks).where(
                    t.evacuation_marks.c.instance.in_(chunk)
                )
                if host is not None:
                    statement = statement.where(t.evacuation_marks.c.host == host)
                cleared += int(conn.execute(statement).rowcount or 0)
        return cleared

    # --- helpers ---------------------------------------------------------

    def _upsert(
        self, table: Table, key: tuple[str, ...], columns: Collection[str] | None = None
    ) -> Any:
        """INSERT ... ON CONFLICT (key) DO UPDATE every other column (or only
        `columns`) but `seq`, which keeps the row's first-insertion order."""
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        statement = dialect.insert(table)
        kept = {*key, "seq"}
        return statement.on_conflict_do_update(
            index_elements=list(key),
            set_={
                c.name: statement.excluded[c.name]
                for c in table.c
                if c.name not in kept and (columns is None or c.name in columns)
            },
        )

    @staticmethod
    def _stored_metrics(
        conn: Connection, table: Table, names: list[str]
    ) -> dict[str, dict[str, float]]:
        stored: dict[str, dict[str, float]] = {}
        for chunk in _chunks(names):
            query = (
                select(table.c.name, table.c.metrics)
                .where(table.c.name.in_(chunk))
                .with_for_update()
            )
            stored.update({row.name: row.metrics for row in conn.execute(query)})
        return stored

    @staticmethod
    def _plan_missing(conn: Connection, plan_id: str) -> bool:
        query = select(t.action_plans.c.id).where(t.action_plans.c.id == plan_id)
        return conn.execute(query).first() is None

    @staticmethod
    def _plans(conn: Connection, query: Executable) -> list[ActionPlan]:
        plan_rows = conn.execute(query).mappings().all()
        ids = [row["id"] for row in plan_rows]
        by_plan: dict[str, list[Action]] = {plan_id: [] for plan_id in ids}
        for chunk in _chunks(ids):
            found = conn.execute(
                select(t.actions)
                .where(t.actions.c.plan_id.in_(chunk))
                .order_by(t.actions.c.plan_id, t.actions.c.ordinal)
            ).mappings()
            for row in found:
                by_plan[row["plan_id"]].append(rows.action_from(row))
        return [rows.plan_from(row, by_plan[row["id"]]) for row in plan_rows]


class _Busy(Exception):
    """Rolls back a lease acquisition that found resources held by others."""

    def __init__(self, held: dict[str, str]) -> None:
        super().__init__(held)
        self.held = held


_Named = TypeVar("_Named", Host, Instance)


def _collapse(
    items: Sequence[_Named],
) -> tuple[dict[str, _Named], dict[str, dict[str, float]]]:
    """The last value per name, and the metrics of all values per name merged in
    order: what upserting them one by one would leave."""
    latest: dict[str, _Named] = {}
    metrics: dict[str, dict[str, float]] = {}
    for item in items:
        latest[item.name] = item
        metrics[item.name] = {
            **metrics.get(item.name, {}),
            **rows.metric_values(item.metrics, item.name),
        }
    return latest, metrics


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _limit(limit: int) -> int:
    if limit < 0:
        raise InvalidInput(f"limit must be 0 or more, not {limit}", field="limit")
    return limit
