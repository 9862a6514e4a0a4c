"""Turns the `power` section into the Redfish endpoints of each host: section-wide
defaults merged into each host's own values, and password files read, with errors
naming the field at fault."""

from __future__ import annotations

from pathlib import Path

from opendrs.cloud.redfish import PowerWait, RedfishEndpoint
from opendrs.config import PowerSettings, RedfishHostSettings
from opendrs.domain.errors import InvalidInput


def power_wait(power: PowerSettings) -> PowerWait:
    return PowerWait(
        timeout_s=power.timeout_s,
        poll_interval_s=power.poll_interval_s,
        request_timeout_s=power.request_timeout_s,
    )


def redfish_endpoints(power: PowerSettings) -> dict[str, RedfishEndpoint]:
    return {name: _endpoint(power, name, host) for name, host in power.hosts.items()}


def _endpoint(power: PowerSettings, name: str, host: RedfishHostSettings) -> RedfishEndpoint:
    # A host's own password (or file) replaces the shared one as a pair.
    if host.password is not None or host.password_file is not None:
        password, password_file, where = host.password, host.password_file, f"hosts.{name}."
    else:
        password, password_file, where = power.password, power.password_file, ""
    if password is not None:
        secret = password.get_secret_value()
    elif password_file is not None:
        secret = _read_password(password_file, f"power.{where}password_file")
    else:
        secret = ""
    verify = host.verify_tls if host.verify_tls is not None else power.verify_tls
    return RedfishEndpoint(
        url=host.url,
        system=host.system,
        username=host.username if host.username is not None else (power.username or ""),
        password=secret,
        auth=host.auth or power.auth or "basic",
        verify_tls=True if verify is None else verify,
    )


def _read_password(path: Path, field: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInput(
            f"cannot read the password file {path}: {error.strerror}",
            source="configuration",
            field=field,
        ) from error
    secret = text.rstrip("\r\n")
    if not secret:
        raise InvalidInput(
            f"the password file {path} is empty", source="configuration", field=field
        )
    return secret
