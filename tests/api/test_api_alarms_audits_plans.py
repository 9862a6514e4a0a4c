"""GET /v1/alarms, /v1/alarms/history, /v1/audits and /v1/action_plans."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from fakes import cluster_scene as scene
from fakes.repositories import MemoryRepositories
from opendrs.api.app import create_app
from opendrs.domain.action import ActionState
from opendrs.domain.alarm import AlarmState, AlarmTransition


@pytest.fixture
def repos() -> MemoryRepositories:
    return scene.populated()


@pytest.fixture
def client(repos: MemoryRepositories) -> TestClient:
    return TestClient(create_app(repos))


def test_alarms_list_what_is_not_ok_newest_first(client: TestClient) -> None:
    alarms = client.get("/v1/alarms").json()
    assert [a["key"] for a in alarms] == ["host_silent/compute-05", "host_cpu_high/compute-02"]
    cpu = alarms[1]
    assert cpu["state"] == "alarm"
    assert cpu["severity"] == "critical"
    assert cpu["value"] == 92.0
    assert cpu["since"] == scene.T0 + 900


def test_all_true_includes_the_ok_alarms(client: TestClient) -> None:
    keys = {a["key"] for a in client.get("/v1/alarms", params={"all": "true"}).json()}
    assert keys == {
        "host_silent/compute-05",
        "host_cpu_high/compute-02",
        "vm_memory_high/vm-03",
    }


def test_history_is_newest_first_and_limited(client: TestClient) -> None:
    history = client.get("/v1/alarms/history").json()
    assert [(t["rule"], t["current"]) for t in history] == [
        ("host_silent", "no_data"),
        ("vm_memory_high", "ok"),
        ("host_cpu_high", "alarm"),
        ("host_cpu_high", "pending"),
        ("vm_memory_high", "alarm"),
    ]
    assert history[2]["previous"] == "pending"
    assert history[2]["reason"] == "cpu 92% > 80% for 5m"
    assert history[2]["notified"] is True
    assert history[3]["notified"] is False  # pending is never notified
    two = client.get("/v1/alarms/history", params={"limit": 2}).json()
    assert [t["rule"] for t in two] == ["host_silent", "vm_memory_high"]


def test_audits_newest_first_and_by_id(client: TestClient) -> None:
    audits = client.get("/v1/audits").json()
    assert [a["id"] for a in audits] == ["audit-new", "audit-old"]
    one = client.get("/v1/audits/audit-new").json()
    assert one["goal"] == "workload_balancing"
    assert one["strategy"] == "overload_relief"
    assert one["audit_type"] == "event"
    assert one["scope"] == ["compute-02"]
    assert one["parameters"] == {"threshold": 80}
    assert one["state"] == "ONGOING"
    assert one["trigger"] == "alarm host_cpu_high/compute-02"


def test_unknown_audit_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/audits/nope")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "audit 'nope' not found",
        "field": "audit_id",
        "details": [],
    }


def test_plans_newest_first_with_their_actions(client: TestClient) -> None:
    plans = client.get("/v1/action_plans").json()
    assert [p["id"] for p in plans] == ["plan-new", "plan-old"]
    new = plans[0]
    assert new["state"] == "ONGOING"
    assert new["audit_id"] == "audit-new"
    assert new["efficacy"] == {"migrations": 2, "hosts_relieved": 1}
    assert new["limits"] == {"max_per_source": 1, "max_per_destination": 2, "max_parallel": 4}
    assert [a["id"] for a in new["actions"]] == ["act-new-1", "act-new-2", "act-new-3"]
    first, second, _ = new["actions"]
    assert set(first) == {
        "id",
        "plan_id",
        "type",
        "parameters",
        "parents",
        "state",
        "message",
        "explanation",
        "started_at",
        "finished_at",
    }
    assert first["type"] == "migrate"
    assert first["parameters"] == {
        "instance": "vm-05",
        "source": "compute-02",
        "destination": "compute-01",
    }
    assert first["state"] == "ONGOING"
    assert first["started_at"] == scene.T0 + 930
    assert first["finished_at"] is None
    assert first["plan_id"] == "plan-new"
    assert second["parents"] == ["act-new-1"]
    assert second["explanation"] == "brings compute-02 under 80%"


def test_plans_filtered_by_state_and_limited(client: TestClient) -> None:
    done = client.get("/v1/action_plans", params={"state": "SUCCEEDED"}).json()
    assert [p["id"] for p in done] == ["plan-old"]
    both = client.get("/v1/action_plans", params=[("state", "SUCCEEDED"), ("state", "ONGOING")])
    assert [p["id"] for p in both.json()] == ["plan-new", "plan-old"]
    assert [p["id"] for p in client.get("/v1/action_plans?limit=1").json()] == ["plan-new"]


def test_a_plan_by_id_shows_journaled_action_states(
    client: TestClient, repos: MemoryRepositories
) -> None:
    plan = repos.get_plan("plan-new")
    repos.journal_action(
        plan.action("act-new-1").moved_to(ActionState.SUCCEEDED, scene.T0 + 990, "migrated")
    )
    actions = client.get("/v1/action_plans/plan-new").json()["actions"]
    assert actions[0]["state"] == "SUCCEEDED"
    assert actions[0]["message"] == "migrated"
    assert actions[0]["finished_at"] == scene.T0 + 990


def test_unknown_plan_is_a_404(client: TestClient) -> None:
    response = client.get("/v1/action_plans/nope")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "action plan 'nope' not found"


_STATES = st.sampled_from(list(AlarmState))


@settings(max_examples=50, deadline=None)
@given(
    moves=st.lists(
        st.tuples(st.sampled_from(["r1", "r2"]), st.sampled_from(["e1", "e2", "e3"]), _STATES),
        max_size=25,
    )
)
def test_alarms_show_the_last_state_of_each_key(moves: list[tuple[str, str, AlarmState]]) -> None:
    repos = MemoryRepositories()
    last: dict[str, AlarmState] = {}
    for n, (rule, entity, state) in enumerate(moves):
        key = f"{rule}/{entity}"
        repos.record(
            AlarmTransition(rule, entity, last.get(key, AlarmState.OK), state, float(n), None)
        )
        last[key] = state
    client = TestClient(create_app(repos, dashboard=False))
    firing = {a["key"]: a["state"] for a in client.get("/v1/alarms").json()}
    everything = {a["key"]: a["state"] for a in client.get("/v1/alarms?all=1").json()}
    assert everything == {k: s.value for k, s in last.items()}
    assert firing == {k: s.value for k, s in last.items() if s != AlarmState.OK}
    history = client.get("/v1/alarms/history?limit=1000").json()
    assert len(history) == len(moves)
    assert [t["time"] for t in history] == sorted((t["time"] for t in history), reverse=True)
