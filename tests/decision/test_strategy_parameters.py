"""Strategy parameters from loose input: coercion, defaults, named errors, spec."""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from opendrs.decision.parameters import parameter_spec, parse_parameters
from opendrs.domain.errors import InvalidInput


@dataclass(frozen=True)
class Knobs:
    level: float = 1.0
    count: int = 2
    dry: bool = False
    label: str = "x"
    hosts: tuple[str, ...] = ()
    weights: Mapping[str, float] = field(default_factory=lambda: {"cpu_load": 1.0})


def test_defaults_and_coercion_from_text_as_a_cli_gives_it() -> None:
    knobs = parse_parameters(
        Knobs,
        {"level": "2.5", "count": 3.0, "dry": "true", "hosts": "a, b", "weights": {"w": 2}},
    )
    assert knobs == Knobs(level=2.5, count=3, dry=True, hosts=("a", "b"), weights={"w": 2.0})
    assert parse_parameters(Knobs, {}) == Knobs()
    assert parse_parameters(Knobs, {"hosts": ["c"]}).hosts == ("c",)


@pytest.mark.parametrize(
    ("raw", "field_name", "words"),
    [
        ({"level": "high"}, "parameters.level", "expected a number"),
        ({"level": True}, "parameters.level", "expected a number"),
        ({"level": math.inf}, "parameters.level", "finite"),
        ({"count": 2.5}, "parameters.count", "whole number"),
        ({"dry": "maybe"}, "parameters.dry", "true or false"),
        ({"label": 3}, "parameters.label", "text"),
        ({"hosts": 3}, "parameters.hosts", "a list"),
        ({"weights": [1]}, "parameters.weights", "a mapping"),
        ({"weights": {"w": "x"}}, "parameters.weights.w", "a number"),
        ({"speed": 1}, "parameters.speed", "unknown parameter 'speed'"),
    ],
)
def test_bad_values_are_named(raw: dict[str, object], field_name: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words) as caught:
        parse_parameters(Knobs, raw, source="strategy knobs")
    assert caught.value.field == field_name
    assert caught.value.source == "strategy knobs"


def test_spec_lists_types_and_defaults() -> None:
    spec = parameter_spec(Knobs)
    assert spec["level"] == {"type": "float", "default": 1.0}
    assert spec["hosts"] == {"type": "list[str]", "default": []}
    assert spec["weights"] == {"type": "mapping[str, float]", "default": {"cpu_load": 1.0}}
