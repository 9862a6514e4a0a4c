"""What a test needs from the machine (a server, a tool, a package): when it is
missing the test skips on a developer's box and fails under CI=true, where a
skip would hide a missing install step."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(why: str) -> NoReturn:
    if in_ci():
        pytest.fail(why)
    pytest.skip(why)
