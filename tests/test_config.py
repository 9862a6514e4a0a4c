"""The settings model: defaults, YAML files, environment overrides and errors
that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendrs.config import load_settings
from opendrs.domain.errors import InvalidInput


def test_defaults_need_no_file() -> None:
    settings = load_settings(None, env={})
    assert settings.database.url.startswith("sqlite:///")
    assert settings.bus.transport == "memory"
    assert settings.cloud.driver == "sim"
    assert [r.name for r in settings.cep.rules] == ["host_overload"]


def test_a_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "opendrs.yaml"
    path.write_text("cloud:\n  sim:\n    hosts: 7\nplanner:\n  max_parallel: 3\n")
    settings = load_settings(path, env={})
    assert settings.cloud.sim.hosts == 7
    assert settings.planner.max_parallel == 3
    assert settings.cloud.sim.instances == 100


def test_the_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "opendrs.yaml"
    path.write_text("cloud:\n  sim:\n    hosts: 7\n")
    env = {"OPENDRS__CLOUD__SIM__HOSTS": "9", "OPENDRS__BUS__TRANSPORT": "nats", "HOME": "/x"}
    settings = load_settings(path, env=env)
    assert settings.cloud.sim.hosts == 9
    assert settings.bus.transport == "nats"


def test_a_bad_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("api:\n  port: 8600\ncloud:\n  sim:\n    hosts: -3\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(path, env={})
    message = str(caught.value)
    assert str(path) in message
    assert "line 5" in message
    assert caught.value.field == "cloud.sim.hosts"


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("cloud:\n  sim:\n    hostz: 3\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(path, env={})
    assert caught.value.field == "cloud.sim.hostz"
    assert "line 3" in str(caught.value)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("cloud:\n  sim: [1, 2\n")
    with pytest.raises(InvalidInput) as caught:
        load_settings(path, env={})
    assert "not valid YAML" in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read file"):
        load_settings(tmp_path / "absent.yaml", env={})


def test_a_power_model_needs_eleven_rising_points() -> None:
    with pytest.raises(InvalidInput, match="11 values"):
        load_settings(None, env={"OPENDRS__CLOUD__SIM__POWER_WATTS": "[1, 2, 3]"})
    rising = "[10, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19]"
    with pytest.raises(InvalidInput, match="must not decrease"):
        load_settings(None, env={"OPENDRS__CLOUD__SIM__POWER_WATTS": rising})


def test_the_target_may_not_exceed_the_overload_threshold() -> None:
    env = {"OPENDRS__DECISION__TARGET_THRESHOLD": "90"}
    with pytest.raises(InvalidInput, match="target_threshold"):
        load_settings(None, env=env)


def test_the_deployment_example_is_a_valid_configuration() -> None:
    example = Path(__file__).parents[1] / "examples" / "deploy" / "site.yaml"
    settings = load_settings(example, env={})
    assert settings.cloud.driver == "libvirt"
    assert set(settings.cloud.libvirt.hosts) == {"compute-1", "compute-2", "compute-3"}
    assert set(settings.power.hosts) <= set(settings.cloud.libvirt.hosts)
    assert settings.decision.continuous_audits[0].goal == "server_consolidation"
