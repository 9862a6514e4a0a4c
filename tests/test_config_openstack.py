"""The settings of a server on an OpenStack cloud: the clouds.yaml entry and Nova's
block-migration flag; bad values and unknown keys are refused naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.config import Settings, load_settings
from opendrs.domain.errors import InvalidInput


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "opendrs.yaml"
    path.write_text(text)
    return load_settings(path, env={})


def test_the_openstack_driver_names_its_cloud(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        """
cloud:
  driver: openstack
  openstack: {cloud: site-a, block_migration: false}
""",
    )
    assert settings.cloud.driver == "openstack"
    assert settings.cloud.openstack.cloud == "site-a"
    assert settings.cloud.openstack.block_migration is False


def test_nova_decides_on_block_migration_unless_told() -> None:
    assert load_settings(None, env={}).cloud.openstack.block_migration == "auto"


def test_the_environment_sets_the_cloud() -> None:
    settings = load_settings(
        None, env={"OPENDRS__CLOUD__DRIVER": "openstack", "OPENDRS__CLOUD__OPENSTACK__CLOUD": "b"}
    )
    assert (settings.cloud.driver, settings.cloud.openstack.cloud) == ("openstack", "b")


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("cloud: {openstack: {block_migration: sometimes}}", "cloud.openstack.block_migration"),
        ("cloud: {openstack: {block_migration: 1}}", "cloud.openstack.block_migration"),
        ("cloud: {openstack: {clouds: a}}", "cloud.openstack.clouds"),
        ("cloud: {openstack: {cloud: a, password: x}}", "cloud.openstack.password"),
        ("cloud: {driver: nova}", "cloud.driver"),
    ],
)
def test_bad_values_are_refused_naming_the_field(tmp_path: Path, text: str, wanted: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        load(tmp_path, text)
    assert wanted in str(caught.value)
