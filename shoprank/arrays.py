"""The numpy array aliases every layer shares (vectors and scores are float32 on the wire and in models)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
# Diversity selection accumulates in double precision (determinants, marginal gains).
Float64Array = npt.NDArray[np.float64]
