"""The Rerank response on the wire ⇄ the sidecar's domain types, both directions.

The server writes its RerankOutcome with `response_to_wire`; the client reads the same type back
with `response_from_wire`, so explanations and timings are declared once (sidecar/domain.py).
"""

from __future__ import annotations

from shoprank.v1 import rerank_pb2 as pb
from sidecar.domain import BatchUsage, Explanation, FeatureContribution, RerankOutcome, ScoredCandidate, Timings


def timings_to_wire(t: Timings) -> pb.StageTimings:
    """Stage timings as the wire sends them (Rerank and Embed responses alike)."""
    return pb.StageTimings(
        tokenize_ms=t.tokenize_ms,
        queue_ms=t.queue_ms,
        inference_ms=t.inference_ms,
        diversify_ms=t.diversify_ms,
        total_ms=t.total_ms,
        batches=t.usage.batches,
        batch_pairs=t.usage.batch_pairs,
        tokens=t.usage.tokens,
        padded_tokens=t.usage.padded_tokens,
        personal_ms=t.personal_ms,
    )


def timings_from_wire(t: pb.StageTimings) -> Timings:
    """The wire's stage timings as the domain type."""
    return Timings(
        tokenize_ms=t.tokenize_ms,
        queue_ms=t.queue_ms,
        inference_ms=t.inference_ms,
        diversify_ms=t.diversify_ms,
        total_ms=t.total_ms,
        usage=BatchUsage(batches=t.batches, batch_pairs=t.batch_pairs, tokens=t.tokens, padded_tokens=t.padded_tokens),
        personal_ms=t.personal_ms,
    )


def response_to_wire(outcome: RerankOutcome) -> pb.RerankResponse:
    """A RerankOutcome as the wire response."""
    response = pb.RerankResponse(
        reranked=outcome.reranked,
        model_version=outcome.model_version,
        diversity_method=outcome.diversity_method,
        cache_hits=outcome.cache_hits,
        diversity_notes=list(outcome.diversity_notes),
        ltr_version=outcome.ltr_version,
        personalised=outcome.personalised,
        personal_interactions=outcome.personal_interactions,
    )
    response.timings.CopyFrom(timings_to_wire(outcome.timings))
    for result in outcome.results:
        item = response.results.add(id=result.id, score=result.score, relevance_score=result.relevance_score)
        if result.explanation is not None:
            e = result.explanation
            item.explanation.CopyFrom(
                pb.Explanation(
                    relevance=e.relevance,
                    first_stage=e.first_stage,
                    blended=e.blended,
                    diversity_term=e.diversity_term,
                    first_stage_rank=e.first_stage_rank,
                    scored_rank=e.scored_rank,
                    final_rank=e.final_rank,
                    reason=e.reason,
                    contributions=[
                        pb.FeatureContribution(feature=c.feature, value=c.value, contribution=c.contribution)
                        for c in e.contributions
                    ],
                    personal_term=e.personal_term,
                )
            )
    return response


def _explanation(e: pb.Explanation) -> Explanation:
    return Explanation(
        relevance=e.relevance,
        first_stage=e.first_stage,
        blended=e.blended,
        diversity_term=e.diversity_term,
        first_stage_rank=e.first_stage_rank,
        scored_rank=e.scored_rank,
        final_rank=e.final_rank,
        reason=e.reason,
        contributions=tuple(
            FeatureContribution(feature=c.feature, value=c.value, contribution=c.contribution) for c in e.contributions
        ),
        personal_term=e.personal_term,
    )


def response_from_wire(response: pb.RerankResponse) -> RerankOutcome:
    """The wire response as the RerankOutcome the server answered (ids as sent: the client maps digests back)."""
    return RerankOutcome(
        results=[
            ScoredCandidate(
                id=r.id,
                score=r.score,
                relevance_score=r.relevance_score,
                explanation=_explanation(r.explanation) if r.HasField("explanation") else None,
            )
            for r in response.results
        ],
        reranked=response.reranked,
        model_version=response.model_version,
        timings=timings_from_wire(response.timings),
        diversity_method=response.diversity_method,
        cache_hits=response.cache_hits,
        diversity_notes=tuple(response.diversity_notes),
        ltr_version=response.ltr_version,
        personalised=response.personalised,
        personal_interactions=response.personal_interactions,
    )
