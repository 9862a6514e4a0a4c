"""The one settings model of opendrs: YAML file, then `OPENDRS__SECTION__FIELD`
environment overrides, validated by pydantic with errors naming file, line, field."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from opendrs.domain.errors import InvalidInput
from opendrs.rulefiles.schema import ActionSpec, MissingSpec, RuleSpec
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
    namespace: str = Field(
        "opendrs",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="prefix of every subject and stream: agents and servers of one "
        "deployment share it, two deployments on one broker differ",
    )


class SimSettings(Section):
    """The simulated cloud of the demo: hosts, VMs, PlanetLab traces."""

    hosts: int = Field(22, ge=1)
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
    vm_mips: float = Field(2800.0, gt=0)
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


class LibvirtCloudSettings(Section):
    """The hosts `opendrs server` manages through libvirt: name -> libvirt URI
    (`qemu+ssh://root@host1/system`, `qemu+tls://host1/system`, `test:///default`).
    The names are those the hosts' agents report (`opendrs agent --host NAME`)."""

    hosts: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(10.0, gt=0, description="bound of every libvirt call")

    @field_validator("hosts")
    @classmethod
    def _named_uris(cls, value: dict[str, str]) -> dict[str, str]:
        for name, uri in value.items():
            if not name or name != name.strip() or "/" in name or name.startswith("."):
                raise ValueError(f"host name {name!r} must be non-empty, without '/' or spaces")
            if not urlsplit(uri).scheme:
                raise ValueError(
                    f"host {name}: {uri!r} is not a libvirt URI (e.g. qemu+ssh://HOST/system)"
                )
        return value


class OpenstackCloudSettings(Section):
    """The OpenStack cloud `opendrs server` manages through Nova and Placement:
    `cloud` names its clouds.yaml entry (credentials stay in clouds.yaml or OS_*
    variables, never here); `block_migration` is Nova's live-migration flag."""

    cloud: str = Field("", description="the clouds.yaml entry (OS_CLOUD when empty)")
    block_migration: Literal["auto"] | bool = "auto"

    @field_validator("block_migration", mode="before")
    @classmethod
    def _auto_or_bool(cls, value: object) -> object:
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f"must be auto, true or false, got {value!r}")


class CloudSettings(Section):
    driver: Literal["sim", "libvirt", "openstack"] = "sim"
    uri: str = "test:///default"
    sim: SimSettings = SimSettings()
    libvirt: LibvirtCloudSettings = LibvirtCloudSettings()
    openstack: OpenstackCloudSettings = OpenstackCloudSettings()


class WatermarkOverride(Section):
    """Another threshold (and clear level) of a watermark rule for one instance or
    one flavor; `enabled: false` switches the rule off for it."""

    instance: str | None = None
    flavor: str | None = None
    threshold: float | None = None
    clear: float | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _one_target(self) -> WatermarkOverride:
        if (self.instance is None) == (self.flavor is None):
            raise ValueError("an override names exactly one of `instance` or `flavor`")
        return self


class WatermarkRule(Section):
    """A local threshold at the agent: fires after `for_samples` breaching polls,
    clears (hysteresis) once the value is back past `clear` for `clear_samples`.

    `of_samples` makes `for_samples` an N-of-M count; `for_seconds` and
    `clear_for_seconds` add a duration the condition must last. The threshold of
    an instance comes, first match wins, from an override naming it, from its
    metadata key `threshold_metadata` (times `metadata_factor`), from an override
    naming its flavor, then from `threshold`. Values are multiplied by `scale`
    before comparing (8 compares a B/s meter in b/s)."""

    name: str
    meter: str
    entity: Literal["host", "instance"] = "host"
    op: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    clear: float | None = None
    for_samples: int = Field(1, ge=1)
    clear_samples: int = Field(1, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"
    of_samples: int | None = Field(None, ge=1, le=64)
    for_seconds: float | None = Field(None, ge=0)
    clear_for_seconds: float | None = Field(None, ge=0)
    scale: float = Field(1.0, gt=0)
    threshold_metadata: str | None = None
    metadata_factor: float = Field(1.0, gt=0)
    metadata_clear_factor: float | None = Field(None, gt=0)
    overrides: list[WatermarkOverride] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> WatermarkRule:
        if self.of_samples is not None and self.of_samples < self.for_samples:
            raise ValueError(
                f"of_samples ({self.of_samples}) must be at least for_samples ({self.for_samples})"
            )
        if (
            self.for_seconds is not None
            and (self.of_samples or self.for_samples) > self.for_samples
        ):
            raise ValueError("for_seconds needs consecutive samples: leave of_samples unset")
        above = self.op in (">", ">=")
        pairs = [(self.threshold, self.clear)] + [(o.threshold, o.clear) for o in self.overrides]
        for threshold, clear in pairs:
            if threshold is None or clear is None:
                continue
            if (above and clear > threshold) or (not above and clear < threshold):
                side = "at or below" if above else "at or above"
                raise ValueError(
                    f"clear {clear:g} must be {side} the threshold {threshold:g} for op {self.op!r}"
                )
        factor = self.metadata_clear_factor
        if factor is not None and (
            (above and factor > self.metadata_factor)
            or (not above and factor < self.metadata_factor)
        ):
            raise ValueError("metadata_clear_factor must be on the clear side of metadata_factor")
        return self

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What a reload compares: a rule keeps its alarm states while these stay."""
        return (self.name, self.meter, self.entity, self.op)


class StatsdSettings(Section):
    """The statsd plugin: gauges (and counters for cumulative meters) over UDP."""

    host: str = "127.0.0.1"
    port: int = Field(8125, ge=1, le=65535)
    prefix: str = "opendrs"
    sample_rate: float = Field(1.0, gt=0, le=1)
    max_packet: int = Field(1432, ge=64, le=65507)
    meters: list[str] = Field(default_factory=list, description="empty: every meter")
    only_changed_gauges: bool = Field(
        False,
        description="send a gauge only when its value changed (statsd keeps the last "
        "value of a gauge); every gauge again each `all_gauges_every` polls",
    )
    all_gauges_every: int = Field(10, ge=1)


class GraphiteSettings(Section):
    """The graphite plugin: plaintext protocol over TCP, reconnecting."""

    host: str = "127.0.0.1"
    port: int = Field(2003, ge=1, le=65535)
    prefix: str = "opendrs"
    timeout: float = Field(2.0, gt=0)
    retry_seconds: float = Field(10.0, ge=0)
    buffer_lines: int = Field(100_000, ge=0)
    meters: list[str] = Field(default_factory=list, description="empty: every meter")


class HistorySettings(Section):
    """The history plugin: the host's own round-robin history."""

    directory: Path | None = None
    meters: list[str] = Field(default_factory=list, description="empty: every gauge")


class PublisherSettings(Section):
    """The publisher plugin's buffer while the bus is unreachable: on disk in
    `buffer_dir` (in memory when unset), bounded; past the bound the oldest
    events are dropped and counted."""

    buffer_dir: Path | None = None
    buffer_max_events: int = Field(100_000, ge=1)
    buffer_max_bytes: int = Field(256 * 1024 * 1024, ge=1024)


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
    plugin_budget_seconds: float | None = Field(
        5.0, gt=0, description="CPU-bound time one plugin may take per poll"
    )
    statsd: StatsdSettings = StatsdSettings()
    graphite: GraphiteSettings = GraphiteSettings()
    history: HistorySettings = HistorySettings()
    publisher: PublisherSettings = PublisherSettings()
    plugin_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="options of third-party plugins, by plugin name"
    )
    config_subject: str = "agents.config"


class InhibitionSettings(Section):
    """While an alarm matching `source` fires, notifications matching `target` that
    share the `equal` labels are muted (`*` matches any value; `rule` the rule name)."""

    source: dict[str, str]
    target: dict[str, str] = Field(default_factory=lambda: {"instance": "*"})
    equal: list[str] = Field(default_factory=lambda: ["host"])


class NotifySettings(Section):
    """Where CEP notifications go and how they are grouped, limited and muted."""

    log: bool = True
    webhooks: list[str] = Field(default_factory=list, description="Alertmanager-format receivers")
    alertmanager_url: str = Field("", description="a real Alertmanager to feed, if any")
    bus_events: bool = True
    group_by: list[str] = Field(default_factory=lambda: ["host"])
    max_per_group: int = Field(20, ge=1)
    rate_period_seconds: float = Field(300.0, gt=0)
    inhibitions: list[InhibitionSettings] = Field(default_factory=list)


class CepSettings(Section):
    """Inline `rules` are written in the rule-file language (docs/cep.md)."""

    rules: list[RuleSpec] = Field(
        default_factory=lambda: [
            # The agent's watermark reports transitions only, so silence means
            # "unchanged" here, not "no data".
            RuleSpec(
                name="host_overload",
                meter="watermark.host_cpu_high",
                op=">=",
                threshold=1.0,
                clear_threshold=0.5,
                severity="critical",
                missing=MissingSpec(policy="keep"),
                actions=[ActionSpec(type="event", goal="overload_relief")],
            )
        ]
    )
    rule_files: list[Path] = Field(
        default_factory=list, description="YAML rule files (see examples/rules/)"
    )
    tick_seconds: float = Field(5.0, gt=0, description="how often silence and flapping are checked")
    notify: NotifySettings = NotifySettings()


class ContinuousAuditSettings(Section):
    """An audit the optimisation service runs every `interval_seconds`."""

    name: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    strategy: str = ""
    interval_seconds: float = Field(gt=0)
    scope: list[str] = Field(default_factory=list, description="hosts, zone:NAME, aggregate:NAME")
    parameters: dict[str, Any] = Field(default_factory=dict)
    auto_trigger: bool = False


class DecisionSettings(Section):
    overload_threshold: float = Field(80.0, gt=0, le=100)
    target_threshold: float = Field(75.0, gt=0, le=100)
    ping_pong_window_seconds: float = Field(
        3600.0, ge=0, description="an instance moved this recently is not moved again"
    )
    continuous_audits: list[ContinuousAuditSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _target_under_threshold(self) -> DecisionSettings:
        if self.target_threshold > self.overload_threshold:
            raise ValueError(
                f"target_threshold ({self.target_threshold}) must not exceed "
                f"overload_threshold ({self.overload_threshold})"
            )
        return self


class PlannerSettings(Section):
    max_per_source: int = Field(2, ge=1)
    max_per_destination: int = Field(2, ge=1)
    max_parallel: int = Field(8, ge=1)
    bandwidth_mb_per_minute: int = Field(
        0, ge=0, description="memory (MB) of migrations started per minute; 0: no budget"
    )


class ApplierSettings(Section):
    migrate_timeout_s: float = Field(1800.0, gt=0)
    host_state_timeout_s: float = Field(300.0, gt=0)
    power_timeout_s: float = Field(900.0, gt=0)
    retry_attempts: int = Field(3, ge=1, description="in all, for transient driver errors")
    retry_first_delay_s: float = Field(5.0, ge=0)
    retry_factor: float = Field(2.0, ge=1)
    retry_max_delay_s: float = Field(300.0, ge=0)


class _BmcCredentials(Section):
    """Credentials and TLS of a BMC; the section's values are defaults per host."""

    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    auth: Literal["basic", "session"] | None = None
    verify_tls: bool | str | None = Field(
        None, description="true, false (self-signed BMC certificates) or a CA bundle path"
    )

    @field_validator("verify_tls", mode="before")
    @classmethod
    def _bool_or_path(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip():
            return value
        raise ValueError("must be true, false or the path of a CA bundle")

    @model_validator(mode="after")
    def _one_password(self) -> _BmcCredentials:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set `password` or `password_file`, not both")
        return self


class RedfishHostSettings(_BmcCredentials):
    """The BMC of one host: `url` (`https://10.0.0.11`) and `system`, the
    ComputerSystem's id or path (empty: the BMC's only system)."""

    url: str
    system: str = ""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"needs an http:// or https:// URL with a host, got {value!r}")
        return value


class PowerSettings(_BmcCredentials):
    """Host power through the hosts' BMCs (Redfish), used by the libvirt driver to
    switch hosts off and on. `hosts` maps host names to their BMCs; username,
    password(_file), auth and verify_tls here are defaults for every host."""

    driver: Literal["redfish"] = "redfish"
    graceful: bool = Field(True, description="GracefulShutdown where allowed, else ForceOff")
    timeout_s: float = Field(300.0, gt=0, description="wait for the BMC to report the state")
    poll_interval_s: float = Field(5.0, gt=0)
    request_timeout_s: float = Field(10.0, gt=0)
    hosts: dict[str, RedfishHostSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _every_host_has_a_password(self) -> PowerSettings:
        for name, host in self.hosts.items():
            username = host.username if host.username is not None else self.username
            own = host.password is not None or host.password_file is not None
            shared = self.password is not None or self.password_file is not None
            if username and not (own or shared):
                raise ValueError(
                    f"hosts.{name}: user {username!r} needs a `password` or `password_file`"
                )
        return self


class ApiSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8600, ge=0, le=65535)


class HistoryStoreSettings(Section):
    """The server's round-robin history: one file per host in `directory`."""

    enabled: bool = True
    directory: Path = Path("var/history")
    step: int = Field(300, ge=1, description="seconds per primary data point")


class ServerSettings(Section):
    """How often the roles of `opendrs server` work, in wall-clock seconds."""

    inventory_interval_seconds: float = Field(
        60.0, gt=0, description="hosts and instances are read from the cloud"
    )
    ingest_flush_seconds: float = Field(
        5.0, gt=0, description="latest samples (and history) are written"
    )
    decision_tick_seconds: float = Field(
        30.0, gt=0, description="continuous audits that are due run"
    )
    applier_interval_seconds: float = Field(
        5.0, gt=0, description="running plans advance, approved ones start"
    )
    stop_timeout_seconds: float = Field(
        30.0, gt=0, description="how long a stopping role may take to finish its round"
    )


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
    applier: ApplierSettings = ApplierSettings()
    power: PowerSettings = PowerSettings()
    api: ApiSettings = ApiSettings()
    history: HistoryStoreSettings = HistoryStoreSettings()
    server: ServerSettings = ServerSettings()
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
