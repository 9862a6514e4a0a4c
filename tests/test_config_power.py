"""The `power` section: BMCs per host with shared defaults, refused when a field is
unknown or wrong, secrets kept out of `config check`, and turned into Redfish
endpoints (password files read) by the wiring."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from fakes.repositories import MemoryRepositories
from opendrs.cloud.bmc_settings import redfish_endpoints
from opendrs.cloud.redfish import RedfishEndpoint, RedfishPower
from opendrs.config import load_settings
from opendrs.domain.errors import DriverError, InvalidInput
from opendrs.domain.host import Host, HostState
from opendrs.wiring import build_libvirt_actions, build_power_control

GOOD = """\
power:
  username: admin
  password_file: {secret}
  verify_tls: false
  timeout_s: 600
  hosts:
    compute-1:
      url: https://10.0.0.11
      system: System.Embedded.1
    compute-2:
      url: https://10.0.0.12
      username: root
      password: calvin
      auth: session
      verify_tls: /etc/ssl/bmc-ca.pem
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opendrs.yaml"
    path.write_text(text)
    return path


def refusal(tmp_path: Path, text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        load_settings(_write(tmp_path, text), env={})
    return caught.value


def test_the_default_has_no_bmc() -> None:
    settings = load_settings(None, env={})
    assert settings.power.hosts == {}
    assert build_power_control(settings) is None


def test_hosts_inherit_the_sections_defaults(tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pass"
    secret.write_text("s3cret\n")
    settings = load_settings(_write(tmp_path, GOOD.format(secret=secret)), env={})
    endpoints = redfish_endpoints(settings.power)
    assert endpoints["compute-1"] == RedfishEndpoint(
        url="https://10.0.0.11",
        system="System.Embedded.1",
        username="admin",
        password="s3cret",
        auth="basic",
        verify_tls=False,
    )
    assert endpoints["compute-2"] == RedfishEndpoint(
        url="https://10.0.0.12",
        username="root",
        password="calvin",
        auth="session",
        verify_tls="/etc/ssl/bmc-ca.pem",
    )
    power = build_power_control(settings)
    assert isinstance(power, RedfishPower)
    assert power.controls("compute-1") and not power.controls("compute-3")
    power.close()


def test_the_libvirt_driver_is_built_with_the_bmcs(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"  # released: nothing listens
    settings = load_settings(
        _write(tmp_path, f"power:\n  hosts:\n    h1: {{url: '{url}'}}\n"), env={}
    )
    states = MemoryRepositories()
    states.upsert_hosts([Host("h1", 8, 8192), Host("h2", 8, 8192)])
    actions = build_libvirt_actions(settings, {}, states)
    try:
        with pytest.raises(DriverError, match="no BMC is configured"):
            actions.set_host_state("h2", HostState.OFF)
        with pytest.raises(DriverError, match=f"BMC of h1 \\({url}\\): BMC unreachable"):
            actions.set_host_state("h1", HostState.OFF)
    finally:
        actions.close()


def test_secrets_stay_out_of_the_effective_settings(tmp_path: Path) -> None:
    settings = load_settings(
        _write(
            tmp_path,
            "power:\n  password: topsecret\n  username: u\n  hosts:\n    h: {url: 'https://b'}\n",
        ),
        env={},
    )
    assert "topsecret" not in json.dumps(settings.model_dump(mode="json"))
    assert redfish_endpoints(settings.power)["h"].password == "topsecret"


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (
            "power:\n  hosts:\n    h1:\n      url: https://b\n      pasword: x\n",
            "power.hosts.h1.pasword",
            "Extra inputs are not permitted",
        ),
        ("power:\n  retries: 3\n", "power.retries", "Extra inputs are not permitted"),
        (
            "power:\n  hosts:\n    h1:\n      url: 10.0.0.11\n",
            "power.hosts.h1.url",
            "needs an http:// or https:// URL",
        ),
        ("power:\n  hosts:\n    h1: {}\n", "power.hosts.h1.url", "Field required"),
        ("power:\n  timeout_s: 0\n", "power.timeout_s", "greater than 0"),
        ("power:\n  driver: ipmi\n", "power.driver", "'redfish'"),
        (
            "power:\n  hosts:\n    h1: {url: 'https://b', auth: digest}\n",
            "power.hosts.h1.auth",
            "'basic' or 'session'",
        ),
        ("power:\n  verify_tls: ''\n", "power.verify_tls", "true, false or the path"),
        ("power:\n  verify_tls: 3\n", "power.verify_tls", "true, false or the path"),
        (
            "power:\n  hosts:\n    h1: {url: 'https://b', password: a, password_file: /p}\n",
            "power.hosts.h1",
            "`password` or `password_file`, not both",
        ),
        (
            "power:\n  username: admin\n  hosts:\n    h1: {url: 'https://b'}\n",
            "power",
            "hosts.h1: user 'admin' needs a `password` or `password_file`",
        ),
    ],
)
def test_bad_power_settings_are_refused_by_field(
    tmp_path: Path, text: str, field: str, problem: str
) -> None:
    error = refusal(tmp_path, text)
    assert error.field == field
    assert problem in error.problem


def test_an_unreadable_password_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pass"
    text = f"power:\n  hosts:\n    h1:\n      url: https://b\n      password_file: {missing}\n"
    settings = load_settings(_write(tmp_path, text), env={})
    with pytest.raises(InvalidInput) as caught:
        redfish_endpoints(settings.power)
    assert caught.value.field == "power.hosts.h1.password_file"
    assert str(missing) in str(caught.value)


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pass"
    empty.write_text("\n")
    text = f"power:\n  password_file: {empty}\n  hosts:\n    h1: {{url: 'https://b'}}\n"
    settings = load_settings(_write(tmp_path, text), env={})
    with pytest.raises(InvalidInput, match="is empty") as caught:
        redfish_endpoints(settings.power)
    assert caught.value.field == "power.password_file"
