"""Subject names on the bus, in one place so publishers and consumers agree, and
the NATS-style wildcard grammar every transport follows."""

from __future__ import annotations

from opendrs.domain.errors import InvalidInput

SAMPLES = "samples"  # samples.<partition>
AGENT_ALARMS = "alarms.agent"
ALARM_TRANSITIONS = "alarms.transition"
AUDIT_REQUESTS = "audits.requested"
HOST_STATE = "hosts.state"  # a host entering or leaving maintenance
INVENTORY_DELETED = "inventory.deleted"  # an instance the cloud no longer has
PLAN_PROGRESS = "plans.progress"
DEAD_LETTER = "deadletter"
WORKER_HEARTBEATS = "workers.heartbeat"  # workers.heartbeat.<role>
# cep.handoff.<partition>: group members' news and pattern halves, for the CEP
# worker holding the partition where the group or the pattern's key is judged
CEP_HANDOFF = "cep.handoff"

_FORBIDDEN = frozenset(" \t\r\n")


def samples(partition: int) -> str:
    return f"{SAMPLES}.{partition}"


def cep_handoff(partition: int) -> str:
    return f"{CEP_HANDOFF}.{partition}"


def heartbeats(role: str) -> str:
    return f"{WORKER_HEARTBEATS}.{role}"


def matches(pattern: str, subject: str) -> bool:
    """NATS-style wildcards: `*` is one token, `>` is one or more trailing tokens."""
    want = pattern.split(".")
    have = subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def check_subject(subject: str) -> str:
    """A concrete subject: dot-separated non-empty tokens, no wildcard, no blank."""
    _check_tokens(subject, "subject")
    if any(token in ("*", ">") for token in subject.split(".")):
        raise InvalidInput(
            f"a subject to publish on cannot hold a wildcard: {subject!r}",
            source="bus",
            field="subject",
        )
    return subject


def check_pattern(pattern: str) -> str:
    """A subscription pattern: tokens, `*` for one token, `>` only as the last one."""
    tokens = _check_tokens(pattern, "pattern")
    if ">" in tokens[:-1]:
        raise InvalidInput(
            f"'>' may only be the last token of a pattern: {pattern!r}",
            source="bus",
            field="pattern",
        )
    return pattern


def _check_tokens(text: str, field: str) -> list[str]:
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"a {field} must be a non-empty string", source="bus", field=field)
    if _FORBIDDEN & set(text):
        raise InvalidInput(f"a {field} cannot hold blanks: {text!r}", source="bus", field=field)
    tokens = text.split(".")
    if any(not token for token in tokens):
        raise InvalidInput(f"empty token in {field} {text!r}", source="bus", field=field)
    for token in tokens:
        if token not in ("*", ">") and ("*" in token or ">" in token):
            raise InvalidInput(
                f"a wildcard must be a whole token in {field} {text!r}",
                source="bus",
                field=field,
            )
    return tokens
