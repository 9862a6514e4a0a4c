"""The one settings model of opendrs: YAML file, then `OPENDRS__SECTION__FIELD`
environment overrides, validated by pydantic with errors naming file, line, field."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opendrs.domain.errors import InvalidInput
from opendrs.yamlfile import read_document, validate

ENV_PREFIX = "OPENDRS__"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    url: str = "sqlite:///opendrs.db"


class BusSettings(Section):
    transport: Literal["memory", "nats", "rabbitmq"] = "memory"
    url: str = ""
    partitions: int = Field(8, ge=1, le=4096)


class SimSettings(Section):
    """The simulated cloud of the demo: hosts, VMs, PlanetLab traces."""

    hosts: int = Field(20, ge=1)
    instances: int = Field(100, ge=0)
    day: str = "20110303"
    trace_dir: Path | None = None
    trace_selection: Literal["busiest", "sorted"] = "busiest"
    seed: int = 42
    host_cores: int = Field(4, ge=1)
    host_mips: float = Field(2660.0, gt=0)
    host_memory_mb: int = Field(32768, gt=0)
    host_disk_gb: int = Field(500, ge=0)
    host_bandwidth_mbps: float = Field(1000.0, gt=0)
    power_watts: list[float] = Field(
        default=[93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135],
        description="watts at 0, 10, ... 100% CPU (HP ProLiant ML110 G5)",
    )
    vm_vcpus: list[int] = Field(default=[1, 2, 2, 4])
    vm_mips: float = Field(2500.0, gt=0)
    vm_memory_mb: list[int] = Field(default=[1024, 2048, 4096])
    vm_disk_gb: int = 20
    cpu_allocation_ratio: float = Field(4.0, gt=0)
    ram_allocation_ratio: float = Field(1.0, gt=0)

    @field_validator("power_watts")
    @classmethod
    def _eleven_points(cls, value: list[float]) -> list[float]:
        if len(value) != 11:
            raise ValueError(f"needs 11 values (0%, 10%, ... 100%), got {len(value)}")
        if any(b < a for a, b in itertools.pairwise(value)):
            raise ValueError("power must not decrease with load")
        return value


class CloudSettings(Section):
    driver: Literal["sim", "libvirt"] = "sim"
    uri: str = "test:///default"
    sim: SimSettings = SimSettings()


class WatermarkRule(Section):
    """A local threshold at the agent: fires after `for_samples` breaching polls,
    clears (hysteresis) once the value is back past `clear` for `clear_samples`."""

    name: str
    meter: str
    entity: Literal["host", "instance"] = "host"
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    clear: float | None = None
    for_samples: int = Field(1, ge=1)
    clear_samples: int = Field(1, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"


class AgentSettings(Section):
    poll_interval: float = Field(300.0, gt=0)
    plugins: list[str] = Field(default=["watermark", "publisher"])
    plugin_failures_before_disable: int = Field(5, ge=1)
    watermarks: list[WatermarkRule] = Field(
        default_factory=lambda: [
            WatermarkRule(
                name="host_cpu_high",
                meter="compute.node.cpu.percent",
                threshold=80.0,
                clear=70.0,
                for_samples=2,
                severity="critical",
            ),
            WatermarkRule(
                name="host_low_free_ram",
                meter="memory.free.percent",
                op="<",
                threshold=15.0,
                clear=20.0,
            ),
        ]
    )


class RuleAction(Section):
    """What a CEP rule does on a transition to alarm: log it, or publish an event."""

    type: Literal["log", "event"] = "log"
    event_type: str = "opendrs.audit.requested"
    goal: str = "overload_relief"
    strategy: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class CepRule(Section):
    name: str
    meter: str
    op: Literal[">", ">=", "<", "<=", "==", "!="] = ">"
    threshold: float
    for_samples: int = Field(1, ge=1)
    clear_threshold: float | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    actions: list[RuleAction] = Field(default_factory=list)


class CepSettings(Section):
    rules: list[CepRule] = Field(
        default_factory=lambda: [
            CepRule(
                name="host_overload",
                meter="watermark.host_cpu_high",
                op=">=",
                threshold=1.0,
                clear_threshold=0.5,
                severity="critical",
                actions=[RuleAction(type="event", goal="overload_relief")],
            )
        ]
    )


class DecisionSettings(Section):
    overload_threshold: float = Field(80.0, gt=0, le=100)
    target_threshold: float = Field(75.0, gt=0, le=100)
    weights: dict[str, float] = Field(default_factory=lambda: {"cpu_load": 1.0})


class PlannerSettings(Section):
    max_per_source: int = Field(2, ge=1)
    max_per_destination: int = Field(2, ge=1)
    max_parallel: int = Field(8, ge=1)


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8600, ge=0, le=65535)


class DemoSettings(Section):
    step_seconds: float = Field(300.0, gt=0, description="simulated seconds per trace step")
    wall_seconds_per_step: float = Field(1.0, ge=0)


class Settings(Section):
    database: DatabaseSettings = DatabaseSettings()
    bus: BusSettings = BusSettings()
    cloud: CloudSettings = CloudSettings()
    agent: AgentSettings = AgentSettings()
    cep: CepSettings = CepSettings()
    decision: DecisionSettings = DecisionSettings()
    planner: PlannerSettings = PlannerSettings()
    api: ApiSettings = ApiSettings()
    demo: DemoSettings = DemoSettings()


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """`OPENDRS__CLOUD__SIM__HOSTS=40` sets cloud.sim.hosts; values are parsed as YAML."""
    for key, raw in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        target = data
        for part in path[:-1]:
            existing = target.get(part)
            if not isinstance(existing, dict):
                existing = {}
                target[part] = existing
            target = existing
        try:
            target[path[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise InvalidInput(f"not a valid value: {exc}", source=f"environment {key}") from exc
    return data


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from an optional YAML file and the environment."""
    env = os.environ if env is None else env
    data: Any = {}
    node = None
    source = "defaults"
    if path is not None:
        data, node = read_document(path)
        source = str(path)
        if not isinstance(data, dict):
            raise InvalidInput("the top level must be a mapping of sections", source=source)
    data = _apply_env(dict(data), env)
    return validate(Settings, data, source=source, node=node)
