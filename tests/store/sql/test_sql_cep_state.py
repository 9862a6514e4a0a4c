"""The CEP state store and the history's rule version and values, on every backend."""

from __future__ import annotations

from opendrs.cep.engine import CepEngine
from opendrs.cep.rule import Aggregate, ThresholdRule
from opendrs.domain.clock import ManualClock
from opendrs.domain.sample import EntityKind, Sample, SampleType
from opendrs.store.sql.cep_state import CepStateStore
from opendrs.store.sql.database import open_database
from opendrs.store.sql.repositories import SqlStore


def cpu(value: float, time: float, entity: str = "vm1") -> Sample:
    return Sample("cpu_util", entity, value, "%", SampleType.GAUGE, time, EntityKind.INSTANCE, "h1")


RULE = ThresholdRule(name="hot", meter="cpu_util", threshold=80.0, for_seconds=120.0)


def test_state_round_trips_and_removed_keys_go(database_url: str) -> None:
    database = open_database(database_url)
    try:
        store = CepStateStore(database, ManualClock())
        engine = CepEngine([RULE])
        engine.process([cpu(90, 0), cpu(90, 0, "vm2")])
        changed, removed = engine.changes()
        store.save_cep_state(changed, removed)
        store.save_cep_state(*engine.changes())  # nothing new: a no-op
        assert [e["entity"] for e in store.load_cep_state()] == ["vm1", "vm2"]
        engine.retire("vm2", 10)
        store.save_cep_state(*engine.changes())
        saved = store.load_cep_state()
        assert [(e["entity"], e["base"], e["active_since"]) for e in saved] == [
            ("vm1", "pending", 0.0)
        ]
        again = CepEngine([RULE])
        assert again.restore(saved) == 1
        [t] = again.process([cpu(90, 120)]).transitions
        assert (t.previous.value, t.current.value, t.time) == ("pending", "alarm", 120)
    finally:
        database.close()


def test_history_keeps_the_rule_version_and_the_values(database_url: str) -> None:
    database = open_database(database_url)
    try:
        sql = SqlStore(database)
        mean = ThresholdRule(
            name="hot", meter="cpu_util", threshold=80.0, aggregate=Aggregate.MEAN, window=300.0
        )
        engine = CepEngine([mean])
        engine.process([cpu(70, 0), cpu(80, 60)])
        [t] = engine.process([cpu(99, 120)]).transitions
        sql.record(t)
        [back] = sql.history()
        assert back.rule_version == engine.rules[0].version
        assert back.details["values"] == [70, 80, 99]
        assert back.details["aggregate"] == "mean" and back.details["threshold"] == 80.0
    finally:
        database.close()
