"""The PyTorch baseline of `shoprank bench rerank`: the served cross-encoder's weights in a plain
fp32 `BertForSequenceClassification`, one padded batch per request, as a simple rerank server
would run it.

The weights are the ones the sidecar serves: the fine-tuned directory named in model.json, or
the seeded zero-shot model; a parity check against the served fp32 ONNX proves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from shoprank.errors import NotSetUpError
from shoprank.model_meta import TOKENIZER_FILE, load_metadata
from shoprank.template import ProductText, cross_encoder_text, query_text

PARITY_TOLERANCE = 1e-3


class TorchCrossEncoder:
    """fp32 PyTorch scoring of (query, product) pairs with the served model's weights and tokenizer."""

    def __init__(self, model_dir: Path, max_length: int, threads: int, device: str = "cpu") -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(threads)
        self.meta = load_metadata(model_dir)
        self.max_length = max_length
        self.device = device
        self.threads = threads
        self.model = self._load_weights().to(device).eval()
        self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length, strategy="only_second")
        self.parity = self._check_parity(model_dir)

    def _load_weights(self) -> Any:
        from transformers import BertForSequenceClassification

        from training.export import zero_shot_cross_encoder

        source = Path(self.meta.source)
        if self.meta.fine_tuned and (source / "config.json").is_file():
            loaded: Any = BertForSequenceClassification.from_pretrained(str(source), num_labels=1)
            return loaded.float()  # released weights may be stored in fp16: the baseline is fp32
        if self.meta.fine_tuned:
            raise NotSetUpError(
                f"the served cross-encoder was fine-tuned from {source}, which is not here; "
                "point model.json's source at the weights or rebuild with `shoprank models build`"
            )
        return zero_shot_cross_encoder()

    def _check_parity(self, model_dir: Path) -> float:
        """Max |torch - served fp32 ONNX| on a few pairs; refuse a baseline of other weights."""
        import onnxruntime as ort

        from sidecar.domain import CandidateProduct

        products = [
            CandidateProduct(title="Utopia Towels cotton kitchen towels, set of 6", brand="Utopia", color="grey"),
            CandidateProduct(title="Anker 65W USB C charger", bullet_points="GaN\nfast charging\nfoldable plug"),
        ]
        ids, mask, types = self.batch("kitchen towels", products)
        expected = self.score_batch(ids, mask, types)
        session = ort.InferenceSession(str(self.meta.onnx_path(model_dir, "fp32")), providers=["CPUExecutionProvider"])
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        names = {i.name for i in session.get_inputs()}
        served = np.asarray(session.run(None, {k: v for k, v in feed.items() if k in names})[0]).reshape(-1)
        difference = float(np.abs(served - expected).max())
        if difference > PARITY_TOLERANCE:
            raise RuntimeError(
                f"the PyTorch baseline differs from the served model by {difference:.2e}: not the same weights"
            )
        return difference

    def batch(
        self, query: str, products: Sequence[ProductText]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Token ids, mask and segment ids of the pairs, padded to the longest (one batch)."""
        q = query_text(query)
        encodings = self._tokenizer.encode_batch([(q, cross_encoder_text(p)) for p in products])
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
            types[row, : len(e.ids)] = e.type_ids
        return ids, mask, types

    def score_batch(
        self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64], types: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.float32]:
        """Logits of one padded batch."""
        torch = self._torch
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.from_numpy(ids).to(self.device),
                attention_mask=torch.from_numpy(mask).to(self.device),
                token_type_ids=torch.from_numpy(types).to(self.device),
            ).logits
        result: npt.NDArray[np.float32] = logits.reshape(-1).float().cpu().numpy()
        return result

    def score(self, query: str, products: Sequence[ProductText]) -> tuple[npt.NDArray[np.float32], int]:
        """Logits of one request (tokenize, pad to the longest, one forward pass) and its padded tokens."""
        ids, mask, types = self.batch(query, products)
        return self.score_batch(ids, mask, types), int(ids.size)
