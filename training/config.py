"""The fine-tuning recipe: every knob of `shoprank train`, with the defaults the release used.

Each field is a `--flag` of `shoprank train` (see training/cli_flags in shoprank/cli/train.py)
and is recorded in the model's training record, so a released model says how it was made.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relevance.judgments import DEFAULT_SPLIT_SEED

Holdout = Literal["dev", "test", "train"]
TrainDevice = Literal["cpu", "cuda"]


class TrainConfig(BaseModel):
    """How to fine-tune the cross-encoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = Field(13, description="seed of weights init, sampling and shuffling")
    split_seed: int = Field(DEFAULT_SPLIT_SEED, description="seed of the by-query split of the judgments")
    dev_queries: int = Field(20, ge=0, description="queries held out for choosing the recipe")
    test_queries: int = Field(30, ge=1, description="queries held out for the final figures (never trained on)")
    holdout: Holdout = Field(
        "test",
        description="test: train on train+dev queries (the release recipe); dev: train on train queries only "
        "and report dev figures (for experiments); train: train on dev+test queries and report figures on the "
        "train queries (so that, with the other two, every query has a model that never saw it)",
    )

    # Optimisation
    steps: int = Field(600, ge=1, description="optimizer steps")
    lr: float = Field(5e-5, gt=0, description="peak learning rate (AdamW, linear warmup then linear decay)")
    warmup: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up")
    weight_decay: float = Field(0.01, ge=0)
    groups_per_step: int = Field(2, ge=1, description="query groups per optimizer step")
    list_size: int = Field(16, ge=2, description="products per query group in a step (sampled from its list)")
    max_tokens: int = Field(128, ge=16, le=512, description="token budget of one pair in training")
    freeze_embeddings: bool = Field(True, description="keep word embeddings fixed (few labels; faster steps)")
    threads: int = Field(
        2, ge=1, description="torch CPU threads (also fixes the float reduction order: same count, same weights)"
    )
    train_device: TrainDevice = Field(
        "cpu",
        description="where the steps run: cpu (the release's; same weights again on the same thread count) or "
        "cuda (a GPU: the recipe in about a minute, in a GPU's float order, so other weights and version id)",
    )

    # Loss: listwise softmax cross-entropy over each group + pointwise BCE on graded targets
    listwise_weight: float = Field(1.0, ge=0, description="weight of the listwise softmax cross-entropy")
    pointwise_weight: float = Field(1.0, ge=0, description="weight of the pointwise BCE on graded targets")
    target_e: float = Field(1.0, ge=0, le=1, description="training target of an Exact product")
    target_s: float = Field(0.1, ge=0, le=1, description="training target of a Substitute")
    target_c: float = Field(0.01, ge=0, le=1, description="training target of a Complement")

    # Hard negatives from first-stage retrieval (unjudged products retrieved for a labelled query)
    hard_negatives: int = Field(8, ge=0, description="unjudged hybrid hits added to each labelled group (0: off)")
    hard_negative_skip: int = Field(
        10, ge=0, description="skip unjudged hits above this rank (likely unlabelled positives)"
    )
    hard_negative_weight: float = Field(0.5, ge=0, description="pointwise weight of a hard negative")

    # Pseudo-queries generated from catalogue products (positive: the product; negatives: retrieved others)
    pseudo_queries: int = Field(
        1000, ge=0, description="pseudo-query groups generated from catalogue products (0: off)"
    )
    distill_queries: int = Field(
        0, ge=0, description="pseudo-queries whose retrieved lists get the bi-encoder's soft targets (0: off)"
    )
    distill_temperature: float = Field(0.05, gt=0, description="temperature of the bi-encoder's softmax targets")
    pseudo_share: float = Field(
        0.5, ge=0, le=1, description="share of groups per step that are unlabelled (pseudo-query, distillation)"
    )
    pseudo_negatives_from: int = Field(
        3, ge=0, description="pseudo negatives are taken from hybrid hits after this rank"
    )

    eval_every: int = Field(100, ge=1, description="dev evaluation interval in steps (holdout dev or train)")
