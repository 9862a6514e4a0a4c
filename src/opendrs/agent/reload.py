"""Reloading an agent's plugin configuration while it runs: from its YAML file
(watched with watchfiles) or from a version the server pushes on the bus. A new
configuration is validated and built first, then swapped in between two polls;
a bad one is rejected with its file (or bus subject), field and reason, and the
running configuration stays."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opendrs.agent.assembly import AgentServices, build_pipeline
from opendrs.agent.poller import Agent
from opendrs.config import AgentSettings, load_settings
from opendrs.domain.errors import InvalidInput
from opendrs.domain.event import Event
from opendrs.domain.ports import Bus, Subscription
from opendrs.yamlfile import validate

log = logging.getLogger(__name__)

CONFIG_EVENT = "opendrs.agent.config"
REJECTED_EVENT = "opendrs.agent.config.rejected"
APPLIED_EVENT = "opendrs.agent.config.applied"
STATUS_SUBJECT = "agents.status"


class AgentReloader:
    """Swaps the plugin configuration of `agent` (built with `services`, now
    running `current`). `path` is the settings file to reload from; `env` the
    environment overrides applied to it (as at start)."""

    def __init__(
        self,
        agent: Agent,
        services: AgentServices,
        current: AgentSettings,
        *,
        path: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.agent = agent
        self.services = services
        self.current = current
        self.path = path
        self._env = env
        self.version = 0  # of the last configuration pushed on the bus
        self.applied = 0
        self.rejected = 0
        self.last_error: InvalidInput | None = None
        self._lock = threading.Lock()

    # --- the swap ------------------------------------------------------------

    def apply(self, new: AgentSettings, origin: str) -> None:
        """Build the pipeline of `new` and swap it in between two polls.

        Raises InvalidInput (the running pipeline untouched) if it cannot be built.
        """
        with self._lock, self.agent.lock:
            pipeline = build_pipeline(
                new,
                self.services,
                previous=self.agent.pipeline.plugins,
                previous_settings=self.current,
            )
            self.agent.pipeline = pipeline
            self.current = new
            self.applied += 1
        log.info("agent %s: plugin configuration from %s applied", self.agent.host, origin)

    # --- from the file ---------------------------------------------------------

    def reload_file(self, path: Path | None = None) -> bool:
        """Reload from the settings file; False (and `last_error`) if rejected."""
        path = path or self.path
        if path is None:
            raise ValueError("no settings file to reload from")
        try:
            settings = load_settings(path, self._env if self._env is not None else {})
            self.apply(settings.agent, str(path))
        except InvalidInput as exc:
            self._rejected(exc)
            return False
        self._announce(APPLIED_EVENT, {"origin": str(path)})
        return True

    def watch(self, stop: threading.Event, *, debounce_ms: int = 200) -> None:
        """Reload whenever the file changes, until `stop` is set. Editors often
        replace a file by renaming, so its directory is watched."""
        from watchfiles import watch

        path = self.path
        if path is None:
            raise ValueError("no settings file to watch")
        target = path.resolve()

        def is_ours(_change: object, changed: str) -> bool:
            return Path(changed).resolve() == target

        for _changes in watch(
            target.parent,
            watch_filter=is_ours,
            stop_event=stop,
            debounce=debounce_ms,
            raise_interrupt=False,
        ):
            if target.exists():
                self.reload_file(target)

    # --- from the bus ----------------------------------------------------------

    def subscribe(self, bus: Bus, subject: str | None = None) -> Subscription:
        """Listen for pushed configurations on `agent.config_subject`."""
        return bus.subscribe(subject or self.current.config_subject, self.on_event)

    def on_event(self, event: Event) -> None:
        """A pushed configuration: data `{"version": n, "agent": {...}}`, optionally
        `"hosts": [...]` to target some agents. Older or equal versions are ignored."""
        source = f"bus {self.current.config_subject} event {event.id}"
        data: Mapping[str, Any] = event.data
        hosts = data.get("hosts")
        if isinstance(hosts, list) and self.agent.host not in hosts:
            return
        version = data.get("version")
        try:
            if not isinstance(version, int) or isinstance(version, bool) or version < 1:
                raise InvalidInput(
                    f"version must be a whole number >= 1, got {version!r}",
                    source=source,
                    field="version",
                )
            if version <= self.version:
                log.info("agent %s: ignoring configuration version %d", self.agent.host, version)
                return
            section = data.get("agent")
            if not isinstance(section, dict):
                raise InvalidInput("missing the `agent` section", source=source, field="agent")
            new = validate(AgentSettings, section, source=f"{source} version {version}")
            self.apply(new, f"{source} version {version}")
        except InvalidInput as exc:
            self._rejected(exc, version=version)
            return
        self.version = version
        self._announce(APPLIED_EVENT, {"origin": source, "version": version})

    # --- reporting ---------------------------------------------------------------

    def _rejected(self, exc: InvalidInput, **extra: Any) -> None:
        self.rejected += 1
        self.last_error = exc
        log.error(
            "agent %s: configuration rejected, keeping the running one: %s", self.agent.host, exc
        )
        self._announce(
            REJECTED_EVENT,
            {"source": exc.source, "field": exc.field, "reason": exc.problem, **extra},
        )

    def _announce(self, kind: str, data: dict[str, Any]) -> None:
        bus = self.services.bus
        if bus is None:
            return
        event = Event(
            type=kind,
            source=self.services.source,
            time=self.services.clock.now(),
            subject=self.agent.host,
            data=data,
        )
        try:
            bus.publish(STATUS_SUBJECT, event)
        except Exception:
            log.warning("could not announce %s on the bus", kind, exc_info=True)
