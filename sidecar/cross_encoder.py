"""The cross-encoder at run time: tokenize → run → post-process, on onnxruntime (CUDA fp16 or CPU int8).

Pairs are (query, product text from the shared template), truncated on the product side only
to `max_length` tokens (settings.max_pair_tokens, 128 by default). Loading checks everything a
hot reload must refuse: model.json of a cross-encoder for this template version, a readable
tokenizer, an ONNX file onnxruntime accepts with the inputs the sidecar feeds, and a warm-up
whose logits have the right shape and are finite.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Encoding, Tokenizer

from shoprank.arrays import FloatArray
from shoprank.model_meta import (
    CROSS_ENCODER,
    TOKENIZER_FILE,
    ModelMetadata,
    ModelNotBuiltError,
    Precision,
    load_metadata,
    model_dir,
)
from shoprank.onnx_session import CudaUnavailableError, create_session
from shoprank.template import ProductText, cross_encoder_text, query_text
from shoprank.token_batches import pad_batch
from sidecar.bucketing import CPU_CALL_OVERHEAD_TOKENS, CUDA_CALL_OVERHEAD_TOKENS, padded_tokens, plan_padded_batches
from sidecar.domain import Admission, BatchUsage, PairScores
from sidecar.onnx_runner import BatchRunner, runner_for
from sidecar.product_tokens import ProductTokenCache, TokenIds, pair_ids

# The sidecar tokenizes on many gRPC handler threads at once; the tokenizers library's own
# thread pool then becomes a queue (docs/benchmarks.md, "Measurements behind constants"). One thread per request, in the
# handler's thread, scales with the handlers instead.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


REQUIRED_INPUTS = ("input_ids", "attention_mask")
# Product text characters tokenized per token of the pair budget (more than any shop text needs;
# a pair that comes out short is re-encoded from the whole text).
_CHARS_PER_TOKEN_BOUND = 8
BERT_MAX_POSITIONS = 512
DEFAULT_PRODUCT_TOKEN_CACHE = 20_000


@dataclass
class TokenizedPairs:
    """Token ids and segment ids of (query, product) pairs, unpadded."""

    ids: list[list[int]]
    type_ids: list[list[int]]

    def lengths(self) -> list[int]:
        """Tokens per pair."""
        return [len(i) for i in self.ids]


def default_precision(device: str, built: Collection[str] = ()) -> Precision:
    """fp16 on CUDA, dynamic int8 on CPU. The calibrated static int8 (`int8-static`, built beside it)
    is served only when asked for: one quiet `bench rerank` put it 1.3x slower than dynamic int8 and no
    closer to fp32 on its judged lists, against a helper's end-to-end run that had it closer (see
    docs/benchmarks.md), so the evidence does not yet support it as the default."""
    del built  # kept for callers that pass the model's files: the choice no longer depends on them
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
        token_budget: int = 8192,
        max_batch: int = 256,
        directory: Path | None = None,
        spinning: bool = False,
        io_binding: bool | None = None,
        product_token_cache: int = DEFAULT_PRODUCT_TOKEN_CACHE,
    ) -> None:
        self.directory = directory or model_dir(models_dir, CROSS_ENCODER)
        self.meta: ModelMetadata = load_metadata(self.directory)
        if self.meta.kind != CROSS_ENCODER:
            raise ModelNotBuiltError(f"{self.directory} holds a {self.meta.kind}, not a cross-encoder")
        self.device = device
        self.precision: Precision = precision or default_precision(device, self.meta.files)
        self.max_length = min(max_length or self.meta.max_length, BERT_MAX_POSITIONS)
        self.version = f"{self.meta.version}:{self.precision}"
        try:
            self._tokenizer = Tokenizer.from_file(str(self.directory / TOKENIZER_FILE))
        except Exception as error:
            raise ModelNotBuiltError(
                f"{self.directory / TOKENIZER_FILE} is not a readable tokenizer ({error}); rebuild with "
                "`shoprank models build`"
            ) from error
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_length, strategy="only_second")
        # A query too long to leave the product room (a pasted paragraph) would make only_second
        # fail; such pairs are cut longest-first instead, so the query gives way too.
        self._long_query_tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
        self._long_query_tokenizer.enable_truncation(max_length=self.max_length, strategy="longest_first")
        self._pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        # Products are tokenized alone (no special tokens, no truncation) and cached; pairs are assembled.
        self._plain_tokenizer = Tokenizer.from_str(self._tokenizer.to_str())
        self._plain_tokenizer.no_truncation()
        cls_id, sep_id = self._tokenizer.token_to_id("[CLS]"), self._tokenizer.token_to_id("[SEP]")
        self._special = (cls_id, sep_id) if cls_id is not None and sep_id is not None else None
        self.product_tokens = ProductTokenCache(product_token_cache, self.max_length)
        path = self.meta.onnx_path(self.directory, self.precision)
        try:
            self._session = create_session(path, device, threads, spinning=spinning)
        except (CudaUnavailableError, FileNotFoundError):
            raise
        except Exception as error:  # onnxruntime raises its own exception types for a bad file
            raise ModelNotBuiltError(
                f"onnxruntime cannot load {path} ({type(error).__name__}: {str(error)[:300]}); "
                "rebuild it with `shoprank models build`"
            ) from error
        self._input_names = {i.name for i in self._session.get_inputs()}
        missing = [name for name in REQUIRED_INPUTS if name not in self._input_names]
        if missing or len(self._session.get_outputs()) != 1:
            raise ModelNotBuiltError(
                f"{path} is not a shoprank cross-encoder (inputs {sorted(self._input_names)}, "
                f"{len(self._session.get_outputs())} outputs; needs {', '.join(REQUIRED_INPUTS)} and one logit)"
            )
        self._runner: BatchRunner = runner_for(self._session, device, io_binding)
        self.token_budget = token_budget
        self.max_batch = max_batch
        self.call_overhead_tokens = CUDA_CALL_OVERHEAD_TOKENS if device == "cuda" else CPU_CALL_OVERHEAD_TOKENS

    def tokenize(self, query: str, products: Sequence[ProductText]) -> TokenizedPairs:
        """Encode (query, product) pairs with product-side truncation."""
        return self.tokenize_texts(query, [cross_encoder_text(p) for p in products])

    def tokenize_texts(self, query: str, product_texts: Sequence[str]) -> TokenizedPairs:
        """Encode (query, product template text) pairs with product-side truncation."""
        q = query_text(query)
        tokenizer = self._tokenizer
        query_ids = self._plain_tokenizer.encode(q, add_special_tokens=False).ids
        if len(query_ids) + 2 > self.max_length // 2:
            tokenizer = self._long_query_tokenizer
        elif self._special is not None:
            pairs = [
                pair_ids(query_ids, ids, self.max_length, *self._special) for ids in self._product_ids(product_texts)
            ]
            return TokenizedPairs([p[0] for p in pairs], [p[1] for p in pairs])
        prefixes = [self._prefix(text) for text in product_texts]
        encodings: list[Encoding] = tokenizer.encode_batch([(q, text) for text in prefixes])
        # A cut text that no longer fills the pair might have lost tokens: encode those in full.
        short = [
            i
            for i, (text, prefix) in enumerate(zip(product_texts, prefixes, strict=True))
            if len(prefix) < len(text) and len(encodings[i].ids) < self.max_length
        ]
        for i, encoding in zip(short, tokenizer.encode_batch([(q, product_texts[i]) for i in short]), strict=True):
            encodings[i] = encoding
        return TokenizedPairs([e.ids for e in encodings], [e.type_ids for e in encodings])

    def _product_ids(self, product_texts: Sequence[str]) -> list[TokenIds]:
        """Each product text's token ids (cut to max_length), from the cache where it has them."""

        def encode(texts: list[str]) -> list[list[int]]:
            prefixes = [self._prefix(text) for text in texts]
            encoded = [e.ids for e in self._plain_tokenizer.encode_batch(prefixes, add_special_tokens=False)]
            # A cut text that came out shorter than the budget might have lost tokens: encode it whole.
            for i, (text, prefix) in enumerate(zip(texts, prefixes, strict=True)):
                if len(prefix) < len(text) and len(encoded[i]) < self.max_length:
                    encoded[i] = self._plain_tokenizer.encode(text, add_special_tokens=False).ids
            return encoded

        return self.product_tokens.ids(product_texts, encode)

    def _prefix(self, text: str) -> str:
        """The text cut at a space after enough characters to fill the pair, so truncation has less to undo.

        BERT splits text at whitespace before word pieces, so a prefix cut at a space tokenizes to a
        prefix of the whole text's tokens: the pair is the same whenever the prefix still fills it.
        """
        limit = self.max_length * _CHARS_PER_TOKEN_BOUND
        if len(text) <= limit:
            return text
        cut = text.rfind(" ", 0, limit)
        return text[:cut] if cut > 0 else text

    def infer(self, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]]) -> FloatArray:
        """Logits of one batch, padded to its longest pair."""
        input_ids, mask = pad_batch(ids, self._pad_id)
        feed = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"], _ = pad_batch(type_ids)
        return self._runner.run(feed).reshape(-1)

    def run(self, pairs: TokenizedPairs, indices: Sequence[int]) -> FloatArray:
        """Logits for the pairs at `indices`, as one padded batch."""
        return self.infer([pairs.ids[i] for i in indices], [pairs.type_ids[i] for i in indices])

    def score(
        self,
        query: str,
        products: Sequence[ProductText],
        deadline: float | None = None,
        ids: Sequence[str] | None = None,
        cancelled: threading.Event | None = None,
        admission: Admission | None = None,
    ) -> PairScores:
        """Logits in input order for one request on its own (no cross-request batching, no cache, no queue)."""
        return self.score_texts(query, [cross_encoder_text(p) for p in products])

    def score_texts(self, query: str, product_texts: Sequence[str]) -> PairScores:
        """Logits in input order of (query, product template text) pairs, scored on this thread."""
        started = time.perf_counter()
        pairs = self.tokenize_texts(query, product_texts)
        tokenized = time.perf_counter()
        out = np.zeros(len(product_texts), dtype=np.float32)
        lengths = pairs.lengths()
        calls = plan_padded_batches(lengths, self.token_budget, self.max_batch, self.call_overhead_tokens)
        for call in calls:
            out[call] = self.run(pairs, call)
        done = time.perf_counter()
        return PairScores(
            logits=out,
            tokenize_ms=(tokenized - started) * 1e3,
            inference_ms=(done - tokenized) * 1e3,
            usage=BatchUsage(
                batches=len(calls),
                batch_pairs=len(product_texts),
                tokens=sum(lengths),
                padded_tokens=padded_tokens(lengths, calls),
            ),
        )

    def warm_up(self) -> float:
        """Run full-length and short batches; check the logits; return measured tokens per second.

        The first calls pay onnxruntime's lazy initialisation (and CUDA kernel selection), so the
        first real request does not; a model whose output is not one finite logit per pair is refused.
        """
        long_text = " ".join(["warm-up product text with bullets and a long description"] * 64)
        pairs = self.tokenize_texts("warm up query", [long_text] * 8 + ["short product"] * 2)
        rate = 0.0
        for _ in range(2):
            for indices in (list(range(8)), [8, 9]):
                started = time.perf_counter()
                logits = self.run(pairs, indices)
                elapsed = time.perf_counter() - started
                if logits.shape != (len(indices),) or not np.isfinite(logits).all():
                    raise ModelNotBuiltError(
                        f"{self.directory} does not give one finite logit per pair (got shape {logits.shape}); "
                        "rebuild it with `shoprank models build`"
                    )
                if len(indices) == 8:
                    rate = sum(len(pairs.ids[i]) for i in indices) / max(elapsed, 1e-6)
        return rate
