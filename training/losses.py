"""Losses over a step's query groups: listwise softmax cross-entropy and pointwise BCE on graded targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional alias


def listwise_softmax_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """ListNet-style cross-entropy between softmax(logits) and the targets normalised to sum 1.

    A group whose targets are all zero carries no preference and contributes 0.
    """
    total = targets.sum()
    if float(total) <= 0.0:
        return logits.sum() * 0.0
    return -(targets / total * F.log_softmax(logits, dim=0)).sum()


def pointwise_bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Weighted binary cross-entropy of sigmoid(logit) against a graded target in [0, 1]."""
    losses = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return (losses * weights).sum() / weights.sum().clamp(min=1e-9)


def group_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, listwise: float, pointwise: float
) -> torch.Tensor:
    """The combined loss of one group."""
    loss = logits.sum() * 0.0
    if listwise > 0:
        loss = loss + listwise * listwise_softmax_ce(logits, targets)
    if pointwise > 0:
        loss = loss + pointwise * pointwise_bce(logits, targets, weights)
    return loss
