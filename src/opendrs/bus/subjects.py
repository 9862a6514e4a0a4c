"""Subject names on the bus, in one place so publishers and consumers agree."""

from __future__ import annotations

SAMPLES = "samples"  # samples.<partition>
AGENT_ALARMS = "alarms.agent"
ALARM_TRANSITIONS = "alarms.transition"
AUDIT_REQUESTS = "audits.requested"
PLAN_PROGRESS = "plans.progress"
DEAD_LETTER = "deadletter"


def samples(partition: int) -> str:
    return f"{SAMPLES}.{partition}"


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
