"""build_server on an OpenStack cloud: `cloud.driver: openstack` connects through
clouds.yaml (here an entry pointing at a replay of Nova and Placement) and runs the
inventory role on the OpenStack inventory and the applier on Nova's live actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

# A test dependency (the `openstack` extra): missing, the module fails to import, loudly.
import openstack  # noqa: F401
import pytest
import yaml

from fakes.nova_replay import Replay, nova_replay
from fakes.plans import migrate, saved_plan
from opendrs.bus.memory import MemoryBus
from opendrs.config import Settings
from opendrs.domain.action import PlanState
from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy
from opendrs.wiring import Server, build_server

pytestmark = pytest.mark.filterwarnings(
    "ignore::PendingDeprecationWarning",
    "ignore:Service placement has no discoverable version",
)


def settings(tmp_path: Path, **nova: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'opendrs.db'}"},
            "history": {"directory": str(tmp_path / "history")},
            "cloud": {"driver": "openstack", "openstack": nova},
        }
    )


@pytest.fixture
def clouds_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Writes a clouds.yaml whose `site` is the replay (a token and a fixed endpoint)."""

    def point_at(replay: Replay) -> None:
        path = tmp_path / "clouds.yaml"
        entry = {"auth_type": "admin_token", "auth": {"endpoint": replay.url, "token": "t0ken"}}
        path.write_text(yaml.safe_dump({"clouds": {"site": entry}}))
        monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))

    monkeypatch.delenv("OS_CLOUD", raising=False)
    yield point_at


def loop(server: Server, name: str) -> Any:
    return next(loop for loop in server.loops if loop.name == name)


def test_the_inventory_role_reads_hosts_instances_and_groups_from_nova(
    tmp_path: Path, clouds_yaml: Any
) -> None:
    with nova_replay("inventory") as replay:
        clouds_yaml(replay)
        server = build_server(settings(tmp_path, cloud="site"), ("inventory",), bus=MemoryBus())
        try:
            assert loop(server, "inventory").run_round()
            hosts = {h.name: h for h in server.store.list_hosts()}
            instances = server.store.list_instances()
            groups = server.store.list_groups()
            status = server.status()
        finally:
            assert server.stop()
    assert sorted(hosts) == ["c1", "c2", "c3", "c4"]
    assert hosts["c3"].state == HostState.MAINTENANCE
    assert len(instances) == 5
    assert {g.policy for g in groups} == {GroupPolicy.ANTI_AFFINITY, GroupPolicy.SOFT_AFFINITY}
    assert status["inventory_host_failures"] == {"c5": 1}


def test_the_applier_role_asks_nova_after_a_live_look(tmp_path: Path, clouds_yaml: Any) -> None:
    config = settings(tmp_path, cloud="site", block_migration=False)
    with nova_replay("live_view") as replay:
        clouds_yaml(replay)
        server = build_server(config, ("applier",), bus=MemoryBus())
        try:
            plan = saved_plan(server.store, migrate("s1", "c1", "c2"))
            server.store.set_plan_state(plan.id, PlanState.PENDING, "approved")
            assert loop(server, "applier").run_round()
        finally:
            assert server.stop()
    asked = [(s.method, s.path) for s in replay.sent]
    # The live view (LiveNovaActions) looked at the destination before Nova was asked.
    look = asked.index(("GET", "/os-services?binary=nova-compute&host=c2"))
    move = asked.index(("POST", "/servers/s1/action"))
    assert look < move
    [post] = replay.requests("POST")
    assert post.body == {"os-migrateLive": {"host": "c2", "block_migration": False}}


def test_the_cloud_roles_need_a_cloud_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OS_CLOUD", raising=False)
    with pytest.raises(InvalidInput, match=r"cloud\.openstack\.cloud: name the clouds\.yaml entry"):
        build_server(settings(tmp_path), ("inventory",), bus=MemoryBus())


def test_an_unknown_clouds_yaml_entry_is_refused_naming_it(
    tmp_path: Path, clouds_yaml: Any
) -> None:
    with nova_replay() as replay:
        clouds_yaml(replay)
        with pytest.raises(InvalidInput, match=r"cloud\.openstack\.cloud: .*'elsewhere'"):
            build_server(settings(tmp_path, cloud="elsewhere"), ("applier",), bus=MemoryBus())
