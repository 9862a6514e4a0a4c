"""The settings of a real deployment's server: libvirt hosts by name and URI, the
bus namespace agents and servers share, the server's intervals; bad values and
unknown keys are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.config import Settings, load_settings
from opendrs.domain.errors import InvalidInput


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "opendrs.yaml"
    path.write_text(text)
    return load_settings(path, env={})


def test_libvirt_hosts_namespace_and_intervals_are_read(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
bus: {namespace: site-a}
cloud:
  driver: libvirt
  libvirt:
    hosts: {h1: "qemu+ssh://root@h1/system", h2: "test:///default"}
server: {inventory_interval_seconds: 30, applier_interval_seconds: 2}
""",
    )
    assert settings.cloud.libvirt.hosts == {
        "h1": "qemu+ssh://root@h1/system",
        "h2": "test:///default",
    }
    assert settings.bus.namespace == "site-a"
    assert settings.server.inventory_interval_seconds == 30
    assert settings.server.decision_tick_seconds == 30


def test_defaults_need_no_server_section() -> None:
    settings = load_settings(None, env={})
    assert settings.cloud.libvirt.hosts == {}
    assert settings.bus.namespace == "opendrs"
    assert settings.server.applier_interval_seconds == 5


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("cloud: {libvirt: {hosts: {h1: not-a-uri}}}", "cloud.libvirt.hosts"),
        ("cloud: {libvirt: {hosts: {'a/b': 'test:///default'}}}", "cloud.libvirt.hosts"),
        ("cloud: {libvirt: {hostz: {}}}", "cloud.libvirt.hostz"),
        ("server: {applier_interval_seconds: 0}", "server.applier_interval_seconds"),
        ("server: {tick: 3}", "server.tick"),
        ("bus: {namespace: 'a.b'}", "bus.namespace"),
    ],
)
def test_bad_values_are_refused_naming_the_field(tmp_path: Path, text: str, wanted: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(tmp_path, text)
    assert wanted in str(caught.value)


def test_a_bad_uri_says_what_a_libvirt_uri_looks_like(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a libvirt URI"):
        load(tmp_path, "cloud: {libvirt: {hosts: {h1: h1.example.com}}}")
