"""One training run end to end: judgments + catalogue → groups → fine-tune → weights + record → ONNX.

The output directory holds `weights/` (fp16 safetensors, config, tokenizer, training record:
what `--release` ships) and `models/cross-encoder/` (the ONNX export with its parity check,
ready for `shoprank eval --cross-encoder`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoTokenizer

from indexer.readers import read_catalogue
from indexer.validate import FieldMapping, validate_row
from relevance.judgments import Judgments, QuerySplit, load_judgments, normalise_query, split_queries
from shoprank.errors import UserInputError
from shoprank.model_meta import CROSS_ENCODER, TRAINING_RECORD_FILE, model_dir
from shoprank.schema import Product
from shoprank.settings import Settings
from shoprank.template import TEMPLATE_VERSION
from training.base_model import BASE_MODEL_NAME, base_model_dir
from training.config import TrainConfig
from training.distillation import distillation_groups
from training.export import export_cross_encoder, fine_tuned_version
from training.groups import Group, labelled_groups
from training.hard_negatives import hybrid_hits, select_hard_negatives
from training.pseudo_queries import pseudo_groups, pseudo_queries
from training.trainer import PairTokenizer, initial_model, judged_metrics, seed_everything, train

log = logging.getLogger(__name__)

WEIGHTS_DIR = "weights"
RETRIEVAL_DEPTH = 100


def file_digest(path: Path) -> str:
    """sha256 of a file (the record says exactly which data a model was trained on)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_products(catalogue: Path) -> dict[str, Product]:
    """Valid catalogue products by id (rows the indexer would reject are skipped; last id wins)."""
    products: dict[str, Product] = {}
    for row in read_catalogue(catalogue):
        result = validate_row(row, FieldMapping())
        if isinstance(result, Product):
            products[result.id] = result
    if not products:
        raise UserInputError(f"no valid products in {catalogue}")
    return products


def training_queries(split: QuerySplit, config: TrainConfig) -> tuple[list[str], list[str]]:
    """(queries trained on, queries for dev figures) for the configured holdout."""
    if config.holdout == "dev":
        return list(split.train), list(split.dev)
    if config.holdout == "train":
        return [*split.dev, *split.test], list(split.train)
    return [*split.train, *split.dev], []


@dataclass
class TrainingRun:
    """Where a run put its outputs, and its record."""

    output: Path
    weights: Path
    models_dir: Path
    record: dict[str, Any]


def _retrieval_groups(
    settings: Settings,
    config: TrainConfig,
    catalogue: Path,
    products: dict[str, Product],
    train_judgments: Judgments,
    all_queries: list[str],
) -> tuple[list[Group], dict[str, int]]:
    """Labelled groups with hard negatives and pseudo-query groups: both need the first stage."""
    from indexer.catalogue_cache import catalogue_engine
    from shoprank.bi_encoder import BiEncoder
    from training.built_models import ensure_models

    encoder = BiEncoder(ensure_models(settings), device="cpu")
    engine = catalogue_engine(settings, encoder, catalogue)
    stats: dict[str, int] = {}
    hard: dict[str, list[str]] = {}
    if config.hard_negatives:
        hits = hybrid_hits(engine, encoder, train_judgments.queries, RETRIEVAL_DEPTH).ids
        hard = select_hard_negatives(hits, train_judgments, config.hard_negatives, config.hard_negative_skip)
        stats["hard_negatives"] = sum(len(v) for v in hard.values())
    groups = labelled_groups(train_judgments, config, products, hard)
    generated = max(config.pseudo_queries, config.distill_queries)
    if generated:
        pairs = pseudo_queries(
            list(products.values()), generated, config.seed, exclude=[normalise_query(q) for q in all_queries]
        )
        retrieved = hybrid_hits(engine, encoder, [q for q, _ in pairs], RETRIEVAL_DEPTH // 2)
        if config.pseudo_queries:
            chosen = pairs[: config.pseudo_queries]
            pseudo = pseudo_groups(chosen, retrieved.ids, products, config.pseudo_negatives_from, config.list_size - 1)
            stats["pseudo_groups"] = len(pseudo)
            groups += pseudo
        if config.distill_queries:
            kept = {q for q, _ in pairs[: config.distill_queries]}
            retrieved.ids = {q: ids for q, ids in retrieved.ids.items() if q in kept}
            distill = distillation_groups(retrieved, products, RETRIEVAL_DEPTH // 2, config.distill_temperature)
            stats["distill_groups"] = len(distill)
            groups += distill
    return groups, stats


def run_training(
    settings: Settings, config: TrainConfig, judgments_path: Path, catalogue: Path, output: Path
) -> TrainingRun:
    """Fine-tune, save weights (fp16) + training record, export ONNX; returns where everything went."""
    started = time.perf_counter()
    seed_everything(config)
    judgments = load_judgments(judgments_path)
    split = split_queries(judgments.queries, config.split_seed, config.dev_queries, config.test_queries)
    train_queries, dev_queries = training_queries(split, config)
    products = load_products(catalogue)
    train_judgments = judgments.subset(train_queries)
    if config.hard_negatives or config.pseudo_queries or config.distill_queries:
        groups, stats = _retrieval_groups(settings, config, catalogue, products, train_judgments, judgments.queries)
    else:
        groups, stats = labelled_groups(train_judgments, config, products), {}
    labelled = [g for g in groups if g.kind == "labelled"]
    unlabelled = [g for g in groups if g.kind != "labelled"]
    log.info("training groups: %d labelled, %d unlabelled %s", len(labelled), len(unlabelled), stats)

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    pairs_tokenizer = PairTokenizer(tokenizer, products, config.max_tokens)
    model = initial_model(config)
    dev = judgments.subset(dev_queries) if dev_queries else None
    output.mkdir(parents=True, exist_ok=True)
    progress = output / "progress.json"

    def write_progress(history: list[dict[str, float]]) -> None:
        progress.write_text(json.dumps(history, indent=1))

    result = train(config, model, pairs_tokenizer, labelled, unlabelled, dev, on_progress=write_progress)
    model = release_precision(result.model)
    version = fine_tuned_version(model)
    dev_figures = judged_metrics(model, pairs_tokenizer, dev) if dev else {}

    record = {
        "version": version,
        "base_model": BASE_MODEL_NAME,
        "template_version": TEMPLATE_VERSION,
        "config": config.model_dump(),
        "data": {
            "judgments": str(judgments_path),
            "judgments_sha256": file_digest(judgments_path),
            "catalogue": str(catalogue),
            "catalogue_sha256": file_digest(catalogue),
            "products": len(products),
            "queries": len(judgments.queries),
            "pairs": judgments.pairs(),
        },
        "split": {
            "seed": config.split_seed,
            "counts": {"train": len(split.train), "dev": len(split.dev), "test": len(split.test)},
            **split.as_dict(),
        },
        "trained_queries": sorted({normalise_query(q) for q in train_queries}),
        "groups": {"labelled": len(labelled), "unlabelled": len(unlabelled), **stats},
        "dev": dev_figures,
        "history": result.history,
        "pairs_seen": result.pairs_seen,
        "train_seconds": round(result.seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "hardware": _hardware(config),
        "software": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    weights = output / WEIGHTS_DIR
    save_weights(model, tokenizer, record, weights)
    models_dir = output / "models"
    export_cross_encoder(
        model,
        tokenizer,
        models_dir,
        version,
        str(weights),
        True,
        settings.max_pair_tokens,
        notes="Fine-tuned on graded shop relevance labels; see training.json.",
        extra_files=[weights / TRAINING_RECORD_FILE],
    )
    log.info("trained %s in %.0f s; dev %s", version, record["total_seconds"], dev_figures)
    return TrainingRun(output, weights, models_dir, record)


def _hardware(config: TrainConfig) -> str:
    where = f"{platform.machine()} {platform.processor()}".strip()
    if config.train_device == "cuda":
        return f"{where}, {torch.cuda.get_device_name(0)}"
    return f"{where} torch threads={config.threads}"


def release_precision(model: Any) -> Any:
    """The model rounded to fp16 (the released form) and back: ship what is measured, same version id."""
    return model.half().float().eval()


def save_weights(model: Any, tokenizer: Any, record: dict[str, Any], directory: Path) -> None:
    """fp16 safetensors + config + tokenizer files + training record: the compact, releasable form."""
    staging = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.half().save_pretrained(str(staging), safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(str(staging))
    (staging / TRAINING_RECORD_FILE).write_text(json.dumps(record, indent=2))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def built_model_dir(run: TrainingRun) -> Path:
    """The exported cross-encoder directory of a run (for `shoprank eval --cross-encoder`)."""
    return model_dir(run.models_dir, CROSS_ENCODER)
