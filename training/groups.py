"""Training groups: one query with a list of products and graded targets.

A group is what the listwise loss normalises over. Labelled groups come from the judgments
(ESCI grades mapped to targets), optionally with hard negatives (unjudged products the
first stage retrieved for the query); unlabelled groups come from pseudo_queries.py
(a generated query and its source product) and distillation.py (the bi-encoder's soft targets).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from relevance.judgments import ESCI_GAINS, Judgments
from training.config import TrainConfig

GroupKind = Literal["labelled", "pseudo", "distill"]


@dataclass(frozen=True)
class Group:
    """A query, its products, a training target per product and a pointwise loss weight per product."""

    query: str
    product_ids: tuple[str, ...]
    targets: tuple[float, ...]
    weights: tuple[float, ...]
    kind: GroupKind = "labelled"

    def sample(self, size: int, rng: random.Random) -> Group:
        """A random sub-list of at most `size` products (the whole group when it is smaller).

        Keeps at least one product with the group's best target, so the listwise loss always
        has something to prefer.
        """
        if len(self.product_ids) <= size:
            return self
        best = max(self.targets)
        tops = [i for i, t in enumerate(self.targets) if t == best]
        keep = rng.choice(tops)
        rest = rng.sample([i for i in range(len(self.product_ids)) if i != keep], size - 1)
        picked = sorted([keep, *rest])
        return Group(
            self.query,
            tuple(self.product_ids[i] for i in picked),
            tuple(self.targets[i] for i in picked),
            tuple(self.weights[i] for i in picked),
            self.kind,
        )


def target_for(gain: float, config: TrainConfig) -> float:
    """Training target of an ESCI gain (the recipe may grade substitutes/complements differently)."""
    table = {
        ESCI_GAINS["E"]: config.target_e,
        ESCI_GAINS["S"]: config.target_s,
        ESCI_GAINS["C"]: config.target_c,
        ESCI_GAINS["I"]: 0.0,
    }
    return table.get(gain, gain)


def labelled_groups(
    judgments: Judgments,
    config: TrainConfig,
    available: Mapping[str, object],
    hard_negatives: Mapping[str, Sequence[str]] | None = None,
) -> list[Group]:
    """One group per judged query: its judged products (those in the catalogue) plus hard negatives."""
    groups = []
    for query in judgments.queries:
        judged = {pid: g for pid, g in judgments.gains[query].items() if pid in available}
        ids = list(judged)
        targets = [target_for(g, config) for g in judged.values()]
        weights = [1.0] * len(ids)
        for pid in (hard_negatives or {}).get(query, ()):
            if pid not in judged and pid in available:
                ids.append(pid)
                targets.append(0.0)
                weights.append(config.hard_negative_weight)
        if ids:
            groups.append(Group(query, tuple(ids), tuple(targets), tuple(weights), "labelled"))
    return groups
