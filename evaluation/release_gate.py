"""The no-regression gate a trained cross-encoder passes before it may replace the release.

A model trained on implicit (click) judgments learns what shoppers click, which is not always
what is relevant; before it ships it must not lose NDCG@10 against the current release on
labelled queries neither model was trained on. Both models rerank the same judged lists
(judged mode: ESCI task 1, the shipped RerankService) and the paired difference decides.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.bootstrap import Interval, paired_difference
from evaluation.evaluate import EvalConfig, evaluate
from evaluation.workspace import trained_queries
from relevance.judgments import load_judgments, normalise_query, write_gains
from relevance.metrics import has_relevant
from shoprank.errors import UserInputError
from shoprank.settings import Settings

# Fewer held-out queries than this cannot tell a regression from noise.
MIN_GATE_QUERIES = 10
# Means of per-query floats: a loss of exactly the margin must not fail on rounding.
FLOAT_SLACK = 1e-12


@dataclass(frozen=True)
class GateReport:
    """Both models' NDCG@10 per held-out query, and the verdict."""

    queries: list[str]
    candidate: str
    current: str
    candidate_ndcg: list[float]
    current_ndcg: list[float]
    margin: float

    @property
    def difference(self) -> Interval:
        """Paired NDCG@10 difference, candidate minus current."""
        return paired_difference(self.candidate_ndcg, self.current_ndcg)

    @property
    def passed(self) -> bool:
        """The candidate may be released: its mean NDCG@10 loses at most `margin` to the current one."""
        return self.difference.mean >= -self.margin - FLOAT_SLACK

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "queries": len(self.queries),
            "candidate": self.candidate,
            "current": self.current,
            "candidate_ndcg@10": sum(self.candidate_ndcg) / len(self.candidate_ndcg),
            "current_ndcg@10": sum(self.current_ndcg) / len(self.current_ndcg),
            "difference": self.difference.as_dict(),
            "margin": self.margin,
            "passed": self.passed,
        }

    def format(self) -> str:
        """One line a release log can keep."""
        diff = self.difference
        verdict = "passed" if self.passed else "FAILED: not released"
        return (
            f"release gate on {len(self.queries)} held-out labelled queries (judged NDCG@10): candidate "
            f"{self.candidate} {self.as_dict()['candidate_ndcg@10']:.4f}, current {self.current} "
            f"{self.as_dict()['current_ndcg@10']:.4f}, difference {diff.mean:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] "
            f"(may lose at most {self.margin:g}): {verdict}"
        )


def gate_queries(labels: Path, *model_dirs: Path) -> list[str]:
    """The labelled queries with a relevant product that none of the models was trained on."""
    seen = set().union(*(trained_queries(d) for d in model_dirs))
    judgments = load_judgments(labels)
    return [q for q in judgments.queries if normalise_query(q) not in seen and has_relevant(judgments.gains[q])]


def release_gate(
    settings: Settings,
    labels: Path,
    candidate_dir: Path,
    current_dir: Path,
    margin: float = 0.0,
    catalogue: Path | None = None,
) -> GateReport:
    """Rerank the held-out labelled queries' judged lists with both cross-encoders and compare."""
    queries = gate_queries(labels, candidate_dir, current_dir)
    if len(queries) < MIN_GATE_QUERIES:
        raise UserInputError(
            f"only {len(queries)} labelled queries in {labels} are unseen by both the candidate and the current "
            f"release (at least {MIN_GATE_QUERIES} are needed): train with a --holdout both models share"
        )
    judgments = load_judgments(labels).subset(queries)
    ndcg: dict[str, list[float]] = {}
    versions: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="shoprank-gate-") as tmp:
        subset = Path(tmp) / "held-out.csv"
        write_gains(
            subset,
            (
                {"query": q, "product_id": pid, "gain": g}
                for q, products in judgments.gains.items()
                for pid, g in products.items()
            ),
        )
        for name, directory in (("candidate", candidate_dir), ("current", current_dir)):
            config = EvalConfig(
                judgments=subset,
                catalogue=catalogue,
                modes=["judged"],
                stages=["rerank"],
                queries="all",
                cross_encoder_dir=directory,
            )
            report = evaluate(settings, config)
            mode = report.modes["judged"]
            if len(mode.queries) != len(queries):
                raise UserInputError(f"{len(queries) - len(mode.queries)} held-out queries could not be evaluated")
            ndcg[name] = list(mode.stages["rerank"].values["ndcg@10"])
            versions[name] = mode.stages["rerank"].model_version
    return GateReport(queries, versions["candidate"], versions["current"], ndcg["candidate"], ndcg["current"], margin)
