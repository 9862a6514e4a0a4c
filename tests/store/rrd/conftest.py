"""Fixtures of the round-robin tests: real RRDtool as the oracle."""

from __future__ import annotations

import pytest
from rrd_oracle import Oracle, require_oracle


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    return require_oracle()
