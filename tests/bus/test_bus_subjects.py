"""Subjects and patterns: NATS wildcards, and the checks that refuse bad ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.bus import subjects
from opendrs.domain.errors import InvalidInput

tokens = st.text(alphabet="abcxyz019_-", min_size=1, max_size=6)
subject_tokens = st.lists(tokens, min_size=1, max_size=5)


@given(subject_tokens)
def test_a_subject_matches_itself_and_its_wildcards(parts: list[str]) -> None:
    subject = ".".join(parts)
    assert subjects.matches(subject, subject)
    assert subjects.matches(".".join("*" for _ in parts), subject)
    assert subjects.matches(">", subject)
    for i in range(len(parts)):
        assert subjects.matches(".".join([*parts[:i], ">"]), subject)


@given(subject_tokens, tokens)
def test_wildcards_need_their_tokens(parts: list[str], extra: str) -> None:
    subject = ".".join(parts)
    assert not subjects.matches(f"{subject}.>", subject)  # `>` is one or more
    assert not subjects.matches(f"{subject}.*", subject)
    assert not subjects.matches(subject, f"{subject}.{extra}")
    assert subjects.matches(f"{subject}.*", f"{subject}.{extra}")


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("samples.*", "samples.3", True),
        ("samples.*", "samples.3.x", False),
        ("samples.>", "samples.3.x", True),
        ("samples.>", "samples", False),
        ("*.transition", "alarms.transition", True),
        ("alarms.agent", "alarms.transition", False),
    ],
)
def test_known_cases(pattern: str, subject: str, expected: bool) -> None:
    assert subjects.matches(pattern, subject) is expected


def test_named_subjects() -> None:
    assert subjects.samples(3) == "samples.3"
    assert subjects.heartbeats("cep") == "workers.heartbeat.cep"
    for name in (subjects.AGENT_ALARMS, subjects.ALARM_TRANSITIONS, subjects.DEAD_LETTER):
        assert subjects.check_subject(name) == name


@pytest.mark.parametrize(
    ("subject", "words"),
    [
        ("", "non-empty"),
        ("a..b", "empty token"),
        ("a.b.", "empty token"),
        ("a b", "blanks"),
        ("a.*", "wildcard"),
        ("a.>", "wildcard"),
        ("a.b*", "whole token"),
    ],
)
def test_bad_subjects_are_refused(subject: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        subjects.check_subject(subject)
    assert words in str(caught.value) and caught.value.field == "subject"


@pytest.mark.parametrize(("pattern", "words"), [(">.a", "last token"), ("a.>x", "whole token")])
def test_bad_patterns_are_refused(pattern: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        subjects.check_pattern(pattern)
    assert words in str(caught.value) and caught.value.field == "pattern"


def test_good_patterns_pass() -> None:
    for pattern in ("samples.>", "*.transition", ">", "a.*.c"):
        assert subjects.check_pattern(pattern) == pattern


@given(st.integers(0, 10_000))
def test_cep_handoffs_have_one_subject_per_partition_apart_from_samples(partition: int) -> None:
    subject = subjects.check_subject(subjects.cep_handoff(partition))
    assert subjects.matches(f"{subjects.CEP_HANDOFF}.*", subject)
    assert not subjects.matches(f"{subjects.SAMPLES}.>", subject)
    assert subject != subjects.cep_handoff(partition + 1)
