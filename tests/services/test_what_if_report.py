"""What-if on the example scenario files: the JSON has exactly the documented keys,
actions are ordered with their dependencies, every action is explained, and an
audit that proposes nothing says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from opendrs.domain.errors import InvalidInput
from opendrs.services.what_if import ACTION_KEYS, what_if

EXAMPLES = Path(__file__).parents[2] / "examples" / "scenarios"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("consolidation.yaml", "server_consolidation", {}),
    (
        "maintenance.yaml",
        "host_maintenance",
        {"maintenance_node": "rack-a-1", "backup_node": "spare-1"},
    ),
    ("imbalance.yaml", "workload_balancing", {"metric": "cpu"}),
    ("overload.yaml", "overload_relief", {}),
]


@pytest.mark.parametrize(("scenario", "goal", "parameters"), CASES)
def test_every_example_gives_the_documented_json(
    scenario: str, goal: str, parameters: dict[str, Any]
) -> None:
    result = what_if(EXAMPLES / scenario, goal=goal, parameters=parameters)
    assert list(result) == ["actions", "efficacy", "explanations"]
    actions = result["actions"]
    assert actions, result["explanations"]
    ids = [a["id"] for a in actions]
    assert ids == [f"a{n}" for n in range(1, len(actions) + 1)]
    for position, action in enumerate(actions):
        assert tuple(action) == ACTION_KEYS
        assert action["type"] in {"migrate", "change_node_state", "power", "nop"}
        # Dependencies point backwards: the list is in a valid order.
        assert all(ids.index(parent) < position for parent in action["after"])
        assert any(e.startswith(f"{action['id']}: ") for e in result["explanations"])
    assert all(isinstance(v, float) for v in result["efficacy"].values())
    assert result["explanations"][0].startswith(f"goal {goal}, strategy ")


def test_consolidation_powers_released_hosts_off_after_they_are_empty() -> None:
    result = what_if(EXAMPLES / "consolidation.yaml", goal="server_consolidation")
    by_id = {a["id"]: a for a in result["actions"]}
    power = [a for a in result["actions"] if a["type"] == "power"]
    assert power
    for action in power:
        leaving = {a["id"] for a in result["actions"] if a["source"] == action["node"]}
        assert leaving and leaving <= set(action["after"])
        assert all(by_id[p]["type"] == "migrate" for p in action["after"])


def test_an_audit_with_nothing_to_do_says_so() -> None:
    result = what_if(
        EXAMPLES / "overload.yaml",
        goal="overload_relief",
        parameters={"threshold": 95, "target": 90},
    )
    assert result["actions"] == []
    assert "no host in scope is above 95% CPU" in result["explanations"]
    assert result["explanations"][-1] == "the audit proposes no action"


def test_a_zone_scope_limits_the_audit() -> None:
    result = what_if(
        EXAMPLES / "consolidation.yaml",
        goal="server_consolidation",
        parameters={"scope": ["zone:az1"]},
    )
    touched = {a["source"] or a["node"] for a in result["actions"]}
    touched |= {a["destination"] for a in result["actions"] if a["destination"]}
    assert touched and all(h.startswith("az1-") for h in touched)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InvalidInput) as caught:
        what_if(EXAMPLES / "imbalance.yaml", goal="workload_balancing", parameters={"metric": "io"})
    assert caught.value.field == "parameters.metric"
