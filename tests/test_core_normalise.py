"""The one min-max normalisation: any finite scale, a constant list maps to ones."""

from __future__ import annotations

import numpy as np
import pytest

from engines.fusion import min_max_fusion
from shoprank.normalise import min_max


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.4e38, -3.4e38, 0.0], [1.0, 0.0, 0.5]),  # range past float32's
        ([1.7e308, -1.7e308, 0.0], [1.0, 0.0, 0.5]),  # range past float64's
        ([5e-324, 0.0], [1.0, 0.0]),  # subnormal differences are differences
        ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),  # constant: every member is the best
        ([], []),
    ],
)
def test_min_max_any_finite_scale(values: list[float], expected: list[float]) -> None:
    result = min_max(np.asarray(values, dtype=np.float64))
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected)


def test_hybrid_fusion_uses_the_same_rule() -> None:
    fused = dict(min_max_fusion([{"a": 1.7e308, "b": -1.7e308}, {"a": 1.0, "b": 1.0}], [0.5, 0.5]))
    assert fused == {"a": 1.0, "b": 0.5}
