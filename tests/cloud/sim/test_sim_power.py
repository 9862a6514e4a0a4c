"""Power models: eleven points, linear in between."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opendrs.cloud.sim.power import PowerModel
from opendrs.domain.errors import InvalidInput

G5 = [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135]


def test_points_and_interpolation() -> None:
    model = PowerModel(G5)
    assert model.watts(0.0) == pytest.approx(93.7)
    assert model.watts(1.0) == pytest.approx(135)
    assert model.watts(0.5) == pytest.approx(116)
    assert model.watts(0.45) == pytest.approx(113)  # halfway between 110 and 116
    assert model.watts(0.05) == pytest.approx((93.7 + 97) / 2)


def test_outside_range_is_clamped() -> None:
    model = PowerModel(G5)
    assert model.watts(-0.3) == pytest.approx(93.7)
    assert model.watts(1.7) == pytest.approx(135)


def test_vectorised_matches_scalar() -> None:
    model = PowerModel(G5)
    loads = np.array([0.0, 0.13, 0.5, 0.99, 1.0])
    assert model.watts(loads) == pytest.approx([model.watts(float(u)) for u in loads])


@given(st.floats(0, 1), st.floats(0, 1))
def test_monotonic(a: float, b: float) -> None:
    model = PowerModel(G5)
    low, high = sorted((a, b))
    assert model.watts(low) <= model.watts(high)


@pytest.mark.parametrize(
    ("watts", "problem"),
    [([1.0] * 10, "11 values"), ([*G5[:-1], 90.0], "decrease"), ([-1.0] * 11, "negative")],
)
def test_bad_models_are_refused(watts: list[float], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        PowerModel(watts)
