"""Ids of events, plans and actions: random version-4 UUIDs in hex, one at a time
or many from one read of the system's randomness."""

from __future__ import annotations

import uuid

from opendrs.domain.event import new_id, new_ids


def test_ids_made_many_at_once_are_version_4_uuids_like_single_ones() -> None:
    many = new_ids(200)
    assert len(set(many)) == 200
    for text in [*many, new_id()]:
        found = uuid.UUID(hex=text)
        assert found.version == 4 and found.variant == uuid.RFC_4122
        assert found.hex == text
    assert new_ids(0) == []
