"""The dead-letter events: what a consumer publishes on `deadletter` instead of
crashing when a message does not decode or a handler rejects it as invalid."""

from __future__ import annotations

import hashlib
from typing import Any

from opendrs.bus import subjects
from opendrs.domain.event import Event

DEAD_LETTER_TYPE = "opendrs.deadletter"
_PAYLOAD_LIMIT = 64 * 1024


def dead_letter(
    subject: str,
    payload: bytes,
    reason: str,
    *,
    time: float,
    key: str = "",
    consumer: str = "",
) -> Event:
    """The dead letter of one stored message.

    Its id derives from the message `key` (stream sequence, message id) and the
    consumer that rejected it, so several consumers rejecting the same bad
    message, or one rejecting a redelivery, produce one dead letter, not many.
    """
    digest = hashlib.sha256()
    for part in (subject, key or payload.hex(), consumer):
        digest.update(part.encode("utf-8", "replace"))
        digest.update(b"\0")
    text = payload[:_PAYLOAD_LIMIT].decode("utf-8", "replace")
    data: dict[str, Any] = {
        "subject": subject,
        "reason": reason,
        "payload": text,
        "truncated": len(payload) > _PAYLOAD_LIMIT,
    }
    if consumer:
        data["consumer"] = consumer
    return Event(
        type=DEAD_LETTER_TYPE,
        source=subject,
        subject=subject,
        time=time,
        data=data,
        id="dl-" + digest.hexdigest()[:32],
    )


def is_dead_letter_subject(subject: str) -> bool:
    """Dead letters are never dead-lettered again (that would loop)."""
    return subject == subjects.DEAD_LETTER
