"""Min-max normalisation: the one definition the sidecar's blend and diversity and the engines' hybrid fusion use."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def min_max(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(v - min) / (max - min) within the list, in float64; a constant list maps to all ones.

    Any finite scale works: scores whose range overflows (float32 or even float64, e.g.
    [3.4e38, -3.4e38]) are halved before subtracting. Values must be finite; an empty list
    stays empty.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return array
    low, high = float(array.min()), float(array.max())
    if high == low:
        return np.ones_like(array)
    span = high - low
    if not np.isfinite(span):
        return np.asarray((array / 2 - low / 2) / (high / 2 - low / 2), dtype=np.float64)
    return np.asarray((array - low) / span, dtype=np.float64)
