"""A cheap stand-in for the bi-encoder: token hashing into 384 dimensions, no model.

For the memory check of `shoprank bench index` on a 200k-product catalogue: the real bi-encoder
takes ~45 minutes per pass over 200k products on a 2-core machine, this takes seconds. What it
measures is everything but the model: reading, validating, writing and building the indices of a
version with real 384-d unit vectors. Texts that share words get similar vectors (signed feature
hashing), so the ANN index sees clustered data rather than noise. Its docs/s say nothing of the
bi-encoder's.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from shoprank.schema import VECTOR_DIM

WORD = re.compile(r"\w+")
MAX_WORDS = 256  # like the bi-encoder's truncation: the head of a long text decides


class HashedEncoder:
    """Signed feature hashing of lower-cased words, L2-normalised; implements the indexer's Encoder."""

    version = "hashed-words-384"

    def __init__(self, dim: int = VECTOR_DIM) -> None:
        self.dim = dim

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(n, dim) float32 unit vectors in input order; a text without words gets a fixed vector."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = WORD.findall(text.lower())[:MAX_WORDS]
            if not words:
                out[row, 0] = 1.0
                continue
            hashes = np.fromiter((zlib.crc32(w.encode()) for w in words), dtype=np.uint32, count=len(words))
            signs = np.where((hashes >> 31) & 1, -1.0, 1.0).astype(np.float32)
            np.add.at(out[row], hashes % self.dim, signs)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out[:, 0] += norms[:, 0] == 0  # words whose signs cancelled: a fixed vector, never NaN
        unit: npt.NDArray[np.float32] = out / np.linalg.norm(out, axis=1, keepdims=True)
        return unit
