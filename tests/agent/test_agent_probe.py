"""`probe_once`: what `opendrs agent --once --json` prints, for the libvirt,
local and sim drivers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from opendrs.agent.probe import probe_once
from opendrs.cloud.sim.cloud import SimCloud
from opendrs.cloud.sim.power import PowerModel
from opendrs.cloud.sim.specs import HostSpec, VmSpec
from opendrs.cloud.sim.traces import Trace
from opendrs.config import Settings, WatermarkRule
from opendrs.domain.clock import ManualClock
from opendrs.domain.errors import InvalidInput

NODE = Path(__file__).parents[1] / "cloud" / "fixtures" / "node.xml"


def test_libvirt_probe_lists_ceilometer_samples_and_alarms() -> None:
    clock = ManualClock(1_700_000_000.0)
    report = probe_once(
        "libvirt",
        f"test://{NODE.resolve()}",
        Settings(),
        host="node-1",
        clock=clock,
        wait=clock.advance,
    )
    json.dumps(report)  # JSON-ready
    assert (report["driver"], report["host"], report["errors"]) == ("libvirt", "node-1", [])
    by_name = {(s["counter_name"], s["resource_id"]) for s in report["samples"]}
    assert ("cpu_util", "web-1") in by_name
    assert ("network.outgoing.bytes.rate", "web-1") in by_name
    cpu = next(s for s in report["samples"] if s["counter_name"] == "cpu")
    assert (cpu["counter_type"], cpu["counter_unit"]) == ("cumulative", "ns")
    assert cpu["timestamp"].startswith("2023-11-14T22:13:21")
    # the test driver reports no free memory on a custom node: the default rule fires
    assert [(a["rule"], a["current"]) for a in report["alarms"]] == [("host_low_free_ram", "alarm")]


def test_an_agent_of_an_openstack_cloud_names_nova_domains_by_server_id() -> None:
    """So its samples meet the instances the server's OpenStack inventory lists."""
    clock = ManualClock(1_700_000_000.0)
    settings = Settings.model_validate({"cloud": {"driver": "openstack"}})
    report = probe_once(
        "libvirt",
        f"test://{NODE.resolve()}",
        settings,
        host="node-1",
        clock=clock,
        wait=clock.advance,
    )
    named = {s["resource_id"] for s in report["samples"] if s["counter_name"] == "cpu_util"}
    assert "11111111-0000-4000-8000-000000000001" in named  # web-1, defined by Nova
    assert "web-1" not in named
    assert "db-1" in named  # a domain Nova did not define keeps its name


def test_local_probe_reports_this_host() -> None:
    clock = ManualClock(0.0)
    report = probe_once("local", "", Settings(), host="me", clock=clock, wait=clock.advance)
    names = {s["counter_name"] for s in report["samples"]}
    assert {"compute.node.cpu.percent", "memory.free", "memory.free.percent"} <= names
    assert all(s["resource_kind"] == "host" for s in report["samples"])


def test_sim_probe_advances_simulated_time() -> None:
    clock = ManualClock()
    cloud = SimCloud(
        [HostSpec("h1", 2, 1000.0, 4096, 50, 1000.0, PowerModel([100.0] * 11))],
        [VmSpec("vm", 1, 1000.0, 1024, 10, Trace("vm", np.full(10, 1.0)))],
        {"vm": "h1"},
        clock,
    )
    settings = Settings()
    settings.agent.watermarks.append(
        WatermarkRule(name="busy", meter="cpu_util", entity="instance", threshold=90)
    )
    report = probe_once("sim", "h1", settings, stats=cloud, clock=clock, interval=300)
    util = next(s for s in report["samples"] if s["counter_name"] == "cpu_util")
    assert util["counter_volume"] == pytest.approx(100.0)
    assert ("busy", "vm") in {(a["rule"], a["entity"]) for a in report["alarms"]}
    assert clock.now() == 300


def test_unknown_driver_and_missing_traces_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(InvalidInput, match="unknown driver 'xen'") as err:
        probe_once("xen", "", Settings())
    assert err.value.field == "driver"
    # the traces are also searched beside the checkout: point at a place without them
    monkeypatch.setenv("OPENDRS_TRACE_DIR", "/nonexistent/planetlab")
    with pytest.raises(InvalidInput, match="PlanetLab traces"):
        probe_once("sim", "", Settings())
