"""The cross-encoder at run time: tokenize → run → post-process, on onnxruntime (CUDA fp16 or CPU int8).

Pairs are (query, product text from the shared template), truncated on the product side only.
Inputs are sorted by length and cut into batches under a token budget so padding stays small.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from shoprank.model_meta import CROSS_ENCODER, TOKENIZER_FILE, ModelMetadata, Precision, load_metadata, model_dir
from shoprank.onnx_session import create_session
from shoprank.template import ProductText, cross_encoder_text, query_text
from shoprank.token_batches import pad_batch, plan_batches

FloatArray = npt.NDArray[np.float32]


@dataclass
class TokenizedPairs:
    """Token ids and segment ids of (query, product) pairs, unpadded."""

    ids: list[list[int]]
    type_ids: list[list[int]]

    def lengths(self) -> list[int]:
        """Tokens per pair."""
        return [len(i) for i in self.ids]


def default_precision(device: str) -> Precision:
    """int8 on CPU (about 2x fp32 at near-equal ranking), fp16 on CUDA."""
    return "fp16" if device == "cuda" else "int8"


class CrossEncoder:
    """Scores (query, product) pairs with the built ONNX cross-encoder."""

    def __init__(
        self,
        models_dir: Path,
        device: str = "cpu",
        precision: Precision | None = None,
        max_length: int | None = None,
        threads: int | None = None,
        token_budget: int = 16384,
        max_batch: int = 128,
        directory: Path | None = None,
    ) -> None:
        self.directory = directory or model_dir(models_dir, CROSS_ENCODER)
        self.meta: ModelMetadata = load_metadata(self.directory)
        self.device = device
        self.precision: Precision = precision or default_precision(device)
        self.max_length = min(max_length or self.meta.max_length, 512)
        self.version = f"{self.meta.version}:{self.precision}"
        self._tokenizer = Tokenizer.from_file(str(self.directory / TOKENIZER_FILE))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length, strategy="only_second")
        self._session = create_session(self.meta.onnx_path(self.directory, self.precision), device, threads)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self.token_budget = token_budget
        self.max_batch = max_batch

    def tokenize(self, query: str, products: Sequence[ProductText]) -> TokenizedPairs:
        """Encode (query, product) pairs with product-side truncation."""
        q = query_text(query)
        encodings: list[Encoding] = self._tokenizer.encode_batch([(q, cross_encoder_text(p)) for p in products])
        return TokenizedPairs([e.ids for e in encodings], [e.type_ids for e in encodings])

    def run(self, pairs: TokenizedPairs, indices: Sequence[int]) -> FloatArray:
        """Logits for the pairs at `indices`, as one padded batch."""
        ids, mask = pad_batch([pairs.ids[i] for i in indices])
        type_ids, _ = pad_batch([pairs.type_ids[i] for i in indices])
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = type_ids
        logits: FloatArray = self._session.run(None, feed)[0].astype(np.float32).reshape(-1)
        return logits

    def score(self, query: str, products: Sequence[ProductText]) -> tuple[FloatArray, float, float]:
        """Logits in input order, with tokenize and inference milliseconds."""
        started = time.perf_counter()
        pairs = self.tokenize(query, products)
        tokenized = time.perf_counter()
        out = np.zeros(len(products), dtype=np.float32)
        for batch in plan_batches(pairs.lengths(), self.token_budget, self.max_batch):
            out[batch] = self.run(pairs, batch)
        done = time.perf_counter()
        return out, (tokenized - started) * 1e3, (done - tokenized) * 1e3

    def warm_up(self) -> None:
        """Run once so the first real request does not pay for lazy initialisation."""
        from sidecar.domain import CandidateProduct

        self.score("warm up", [CandidateProduct(title="warm up product", brand="shoprank")] * 4)
