"""The bi-encoder at run time: ONNX all-MiniLM-L6-v2, mean pooled and L2-normalised in the graph.

Used by the indexer (product vectors), the front door (query vectors) and the sidecar
(embeddings for diversity when the engine sent none). Never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from shoprank.arrays import FloatArray
from shoprank.model_meta import BI_ENCODER, TOKENIZER_FILE, Precision, load_metadata, model_dir
from shoprank.onnx_session import create_session, resolve_device
from shoprank.settings import Settings
from shoprank.token_batches import pad_batch, plan_batches


class BiEncoder:
    """Embeds texts into unit vectors with the built ONNX bi-encoder."""

    def __init__(
        self,
        models_dir: Path,
        device: str = "cpu",
        precision: Precision = "fp32",
        threads: int | None = None,
        token_budget: int = 8192,
        max_batch: int = 128,
        spin: bool = True,
    ) -> None:
        directory = model_dir(models_dir, BI_ENCODER)
        self.meta = load_metadata(directory)
        self.dim = int(self.meta.dim or 0)
        self.version = self.meta.version
        self._tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.meta.max_length)
        self.precision: Precision = precision
        self._session = create_session(self.meta.onnx_path(directory, precision), device, threads, spinning=spin)
        self._input_names = {i.name for i in self._session.get_inputs()}
        self._token_budget = token_budget
        self._max_batch = max_batch

    @classmethod
    def from_settings(cls, settings: Settings, threads: int | None = None, spin: bool = True) -> BiEncoder:
        """The bi-encoder as configured: one precision embeds both products (indexer) and queries."""
        return cls(
            settings.models_dir(),
            device=resolve_device(settings.device),
            precision=settings.bi_encoder_precision,
            threads=threads,
            spin=spin,
        )

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenize (truncated to the model's max length) without padding."""
        return [enc.ids for enc in self._tokenizer.encode_batch(list(texts))]

    def encode(self, texts: Sequence[str]) -> FloatArray:
        """Embed texts; returns an (n, dim) float32 array of unit vectors in input order."""
        return self.encode_ids(self.token_ids(texts))

    def encode_ids(self, ids: Sequence[Sequence[int]]) -> FloatArray:
        """Embed texts already tokenized by `token_ids` (the sidecar times the two steps apart)."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        if not ids:
            return out
        for batch in plan_batches([len(s) for s in ids], self._token_budget, self._max_batch):
            input_ids, mask = pad_batch([ids[i] for i in batch])
            feed = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feed["token_type_ids"] = np.zeros_like(input_ids)
            out[batch] = self._session.run(None, feed)[0]
        return out

    def encode_one(self, text: str) -> FloatArray:
        """Embed a single text (a query)."""
        vector: FloatArray = self.encode([text])[0]
        return vector
