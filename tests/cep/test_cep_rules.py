"""ThresholdRule: comparison, hysteresis and the validation of bad rules."""

import math

import pytest

from opendrs.cep.rule import ActionKind, Op, RuleAction, ThresholdRule
from opendrs.domain.alarm import Severity
from opendrs.domain.errors import InvalidInput


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", 80.0, False),
        (">", 80.1, True),
        (">=", 80.0, True),
        ("<", 80.0, False),
        ("<", 79.9, True),
        ("<=", 80.0, True),
        ("==", 80.0, True),
        ("==", 80.1, False),
        ("!=", 80.1, True),
        ("!=", 80.0, False),
    ],
)
def test_every_operator_compares_value_to_threshold(op: str, value: float, expected: bool) -> None:
    rule = ThresholdRule(name="r", meter="cpu_util", threshold=80.0, op=Op(op))
    assert rule.breaches(value) is expected


def test_holds_uses_clear_threshold_when_given() -> None:
    rule = ThresholdRule(name="r", meter="m", threshold=80.0, clear_threshold=70.0)
    assert rule.holds(75.0)
    assert not rule.holds(70.0)
    plain = ThresholdRule(name="r", meter="m", threshold=80.0)
    assert not plain.holds(75.0)


def test_strings_from_config_become_enums() -> None:
    rule = ThresholdRule(
        name="r",
        meter="m",
        threshold=1.0,
        op=">=",  # type: ignore[arg-type]
        severity="critical",  # type: ignore[arg-type]
        actions=[RuleAction(kind="event", goal="overload_relief")],  # type: ignore[arg-type]
    )
    assert rule.op is Op.GE
    assert rule.severity is Severity.CRITICAL
    assert isinstance(rule.actions, tuple)
    assert rule.actions[0].kind is ActionKind.EVENT


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"op": "=>"}, "op", "'=>'"),
        ({"for_samples": 0}, "for_samples", "at least 1"),
        ({"clear_samples": 0}, "clear_samples", "at least 1"),
        ({"threshold": math.nan}, "threshold", "finite"),
        ({"clear_threshold": 90.0}, "clear_threshold", "above threshold"),
        ({"op": "<", "clear_threshold": 70.0}, "clear_threshold", "below threshold"),
        ({"op": "==", "clear_threshold": 70.0}, "clear_threshold", "no direction"),
        ({"severity": "fatal"}, "severity", "fatal"),
        ({"meter": ""}, "meter", "meter"),
    ],
)
def test_bad_rules_name_the_rule_and_field(
    kwargs: dict[str, object], field: str, words: str
) -> None:
    args: dict[str, object] = {"name": "cpu_high", "meter": "cpu_util", "threshold": 80.0}
    args.update(kwargs)
    with pytest.raises(InvalidInput) as caught:
        ThresholdRule(**args)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert "cpu_high" in caught.value.source
    assert words in str(caught.value)


def test_unknown_action_kind_is_named() -> None:
    with pytest.raises(InvalidInput, match="'email'"):
        RuleAction(kind="email")  # type: ignore[arg-type]
