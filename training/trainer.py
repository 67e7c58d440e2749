"""The fine-tuning loop: seeded, CPU-friendly, with periodic dev figures.

Each step takes a few query groups (labelled and, when enabled, unlabelled ones), samples
`list_size` products from each, scores every (query, product) pair in one padded batch with
the serving template, and minimises listwise softmax CE + pointwise BCE. Word embeddings are
frozen by default: with a hundred judged queries they only overfit, and they are half the
model's parameters.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import BertForSequenceClassification

from relevance.judgments import Judgments
from relevance.metrics import ndcg_at_k, reciprocal_rank
from shoprank.errors import NotSetUpError, UserInputError
from shoprank.schema import Product
from shoprank.template import cross_encoder_text, query_text
from training.base_model import base_model_dir
from training.config import TrainConfig
from training.groups import Group
from training.losses import group_loss

log = logging.getLogger(__name__)

SCORE_BATCH = 64


def seed_everything(config: TrainConfig) -> None:
    """Fix every source of randomness and the float reduction order (thread count)."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    if config.train_device == "cuda":
        if not torch.cuda.is_available():
            raise NotSetUpError("--train-device cuda: torch sees no CUDA GPU here; train with --train-device cpu")
        # cuBLAS is only deterministic with a fixed workspace; it must be set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.manual_seed_all(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def initial_model(config: TrainConfig) -> BertForSequenceClassification:
    """BertForSequenceClassification(num_labels=1) from all-MiniLM-L6-v2, seeded head."""
    torch.manual_seed(config.seed)
    model = BertForSequenceClassification.from_pretrained(str(base_model_dir()), num_labels=1)
    return model.float().to(config.train_device)


class PairTokenizer:
    """Tokenizes (query, product) pairs exactly as the sidecar does: serving template, product-side truncation."""

    def __init__(self, tokenizer: Any, products: Mapping[str, Product], max_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.products = products
        self.max_tokens = max_tokens
        self._texts: dict[str, str] = {}

    def text(self, product_id: str) -> str:
        """The product side of a pair (cached)."""
        if product_id not in self._texts:
            self._texts[product_id] = cross_encoder_text(self.products[product_id])
        return self._texts[product_id]

    def __call__(self, pairs: Sequence[tuple[str, str]], device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
        """A padded batch of token ids, attention mask and segment ids, on `device` (the model's)."""
        encoded = self.tokenizer(
            [query_text(q) for q, _ in pairs],
            [self.text(pid) for _, pid in pairs],
            truncation="only_second",
            max_length=self.max_tokens,
            padding=True,
            return_tensors="pt",
        )
        return {name: tensor.to(device) for name, tensor in encoded.items()}


def score_pairs(
    model: BertForSequenceClassification, pairs_tokenizer: PairTokenizer, pairs: Sequence[tuple[str, str]]
) -> np.ndarray:
    """Logits of pairs (no grad), batched by similar length so padding stays small."""
    order = sorted(range(len(pairs)), key=lambda i: len(pairs_tokenizer.text(pairs[i][1])))
    out = np.zeros(len(pairs), dtype=np.float32)
    was_training = model.training
    device = model.device
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), SCORE_BATCH):
            chunk = order[start : start + SCORE_BATCH]
            logits = model(**pairs_tokenizer([pairs[i] for i in chunk], device)).logits[:, 0]
            out[chunk] = logits.float().cpu().numpy()
    model.train(was_training)
    return out


def judged_metrics(
    model: BertForSequenceClassification, pairs_tokenizer: PairTokenizer, judgments: Judgments
) -> dict[str, float]:
    """Mean NDCG@10, NDCG@5 and MRR of reranking each query's judged list (ESCI task 1)."""
    pairs = [(q, pid) for q in judgments.queries for pid in judgments.gains[q] if pid in pairs_tokenizer.products]
    scores = score_pairs(model, pairs_tokenizer, pairs)
    by_query: dict[str, list[tuple[float, str]]] = {}
    for (query, pid), score in zip(pairs, scores, strict=True):
        by_query.setdefault(query, []).append((float(score), pid))
    values: dict[str, list[float]] = {"ndcg@10": [], "ndcg@5": [], "mrr": []}
    for query, scored in by_query.items():
        ranking = [pid for _, pid in sorted(scored, key=lambda sp: (-sp[0], sp[1]))]
        gains = judgments.gains[query]
        values["ndcg@10"].append(ndcg_at_k(ranking, gains, 10))
        values["ndcg@5"].append(ndcg_at_k(ranking, gains, 5))
        values["mrr"].append(reciprocal_rank(ranking, gains))
    return {name: float(np.mean(v)) for name, v in values.items()}


def _cycle(groups: Sequence[Group], rng: random.Random) -> Iterator[Group]:
    """Endless reshuffled passes over the groups."""
    order = list(range(len(groups)))
    while True:
        rng.shuffle(order)
        for index in order:
            yield groups[index]


def _optimizer(model: torch.nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, Any]:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    warmup = max(1, int(config.steps * config.warmup))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (config.steps - step) / max(1, config.steps - warmup))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


@dataclass
class TrainResult:
    """The trained model and how training went."""

    model: BertForSequenceClassification
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    pairs_seen: int = 0


def train(
    config: TrainConfig,
    model: BertForSequenceClassification,
    pairs_tokenizer: PairTokenizer,
    labelled: Sequence[Group],
    unlabelled: Sequence[Group] = (),
    dev: Judgments | None = None,
    on_progress: Callable[[list[dict[str, float]]], None] | None = None,
) -> TrainResult:
    """Fine-tune `model` for `config.steps` steps; dev figures every `config.eval_every` steps when given.

    `on_progress` gets the history each time it grows (the pipeline writes it to disk).
    """
    if not labelled and not unlabelled:
        raise UserInputError("nothing to train on: no labelled and no unlabelled groups")
    rng = random.Random(config.seed)
    if config.freeze_embeddings:
        model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    optimizer, scheduler = _optimizer(model, config)
    labelled_stream = _cycle(labelled, rng) if labelled else None
    unlabelled_stream = _cycle(unlabelled, rng) if unlabelled else None
    n_unlabelled = round(config.groups_per_step * config.pseudo_share) if unlabelled_stream else 0
    if labelled_stream is None:
        n_unlabelled = config.groups_per_step
    result = TrainResult(model)
    device = model.device
    started = time.perf_counter()
    running, since_log = 0.0, 0
    model.train()
    for step in range(config.steps):
        groups = [next(unlabelled_stream) for _ in range(n_unlabelled)] if unlabelled_stream else []
        if labelled_stream is not None:
            groups += [next(labelled_stream) for _ in range(config.groups_per_step - n_unlabelled)]
        sampled = [g.sample(config.list_size, rng) for g in groups]
        pairs = [(g.query, pid) for g in sampled for pid in g.product_ids]
        logits = model(**pairs_tokenizer(pairs, device)).logits[:, 0]
        loss = logits.sum() * 0.0
        offset = 0
        for g in sampled:
            n = len(g.product_ids)
            loss = loss + group_loss(
                logits[offset : offset + n],
                torch.tensor(g.targets, dtype=torch.float32, device=device),
                torch.tensor(g.weights, dtype=torch.float32, device=device),
                config.listwise_weight,
                config.pointwise_weight,
            )
            offset += n
        loss = loss / len(sampled)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        result.pairs_seen += len(pairs)
        running += float(loss.detach())
        since_log += 1
        done = step + 1
        if done % 25 == 0 or done == config.steps:
            elapsed = time.perf_counter() - started
            log.info(
                "step %d/%d loss %.4f (%.0f s, %.1f pairs/s)",
                done,
                config.steps,
                running / since_log,
                elapsed,
                result.pairs_seen / elapsed,
            )
            result.history.append({"step": done, "loss": running / since_log, "seconds": elapsed})
            running, since_log = 0.0, 0
            if on_progress:
                on_progress(result.history)
        if dev is not None and (done % config.eval_every == 0 or done == config.steps):
            figures = judged_metrics(model, pairs_tokenizer, dev)
            log.info("step %d dev %s", done, {k: round(v, 4) for k, v in figures.items()})
            result.history.append({"step": done, **{f"dev_{k}": v for k, v in figures.items()}})
            if on_progress:
                on_progress(result.history)
    # Saving, hashing and ONNX export work on CPU tensors, whichever device trained.
    model.cpu().eval()
    result.seconds = time.perf_counter() - started
    return result
