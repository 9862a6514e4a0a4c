"""Scenario files: the DESIGN.md format into a Cluster, with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.domain.errors import InvalidInput
from opendrs.domain.host import HostState
from opendrs.domain.instance import GroupPolicy
from opendrs.scenario import load_scenario

GOOD = """\
hosts:
  - name: hostname_0
    vcpus: 16
    memory_mb: 65536
    disk_gb: 250
    state: enabled
    cpu_allocation_ratio: 1.0
    ram_allocation_ratio: 1.0
    metrics: {compute.node.cpu.percent: 7}
  - name: hostname_1
    vcpus: 8
    memory_mb: 32768
    state: maintenance
    disabled_reason: fans
instances:
  - name: INSTANCE_0
    host: hostname_0
    vcpus: 2
    memory_mb: 2048
    disk_gb: 20
    state: active
    groups: [web]
    metrics: {cpu_util: [[0, 5], [600, 9], [300, 7]], memory.usage: 512}
groups:
  - {name: web, policy: anti-affinity}
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_scenario_becomes_a_cluster(tmp_path: Path) -> None:
    cluster = load_scenario(write(tmp_path, GOOD))
    assert set(cluster.hosts) == {"hostname_0", "hostname_1"}
    h0 = cluster.hosts["hostname_0"]
    assert (h0.vcpus_used, h0.memory_mb_used, h0.local_gb_used, h0.running_vms) == (2, 2048, 20, 1)
    assert cluster.hosts["hostname_1"].state == HostState.MAINTENANCE
    vm = cluster.instances["INSTANCE_0"]
    assert vm.metrics["cpu_util"] == 9  # the latest of the [timestamp, value] pairs
    assert vm.groups == ("web",)
    assert cluster.groups["web"].policy == GroupPolicy.ANTI_AFFINITY


def test_json_works_too(tmp_path: Path) -> None:
    text = '{"hosts": [{"name": "a", "vcpus": 4, "memory_mb": 1024}], "instances": []}'
    cluster = load_scenario(write(tmp_path, text, "s.json"))
    assert list(cluster.hosts) == ["a"]


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        (GOOD.replace("vcpus: 16", "vcpus: many"), "hosts.0.vcpus", "integer"),
        (GOOD.replace("host: hostname_0", "host: nowhere"), "", "unknown host 'nowhere'"),
        (GOOD.replace("groups: [web]", "groups: [db]"), "", "unknown groups"),
        (GOOD.replace("state: maintenance", "state: asleep"), "hosts.1.state", "enabled"),
        (GOOD.replace("name: hostname_1", "name: hostname_0"), "", "duplicate host"),
    ],
)
def test_bad_scenarios_name_what_is_wrong(tmp_path: Path, bad: str, field: str, words: str) -> None:
    path = write(tmp_path, bad)
    with pytest.raises(InvalidInput) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)
    if field:
        assert caught.value.field == field


def test_an_empty_cluster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="hosts"):
        load_scenario(write(tmp_path, "hosts: []\n"))
