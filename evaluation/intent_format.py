"""The table `shoprank eval-intent` prints from an IntentReport (evaluation/intent_quality.py)."""

from __future__ import annotations

from evaluation.bootstrap import bootstrap_ci, paired_difference
from evaluation.intent_quality import OFF, PREDICTORS, IntentReport


def format_report(report: IntentReport) -> str:
    """The table `shoprank eval-intent` prints."""
    lines = [
        f"query intent at depth {report.depth} ({report.labels} categories) over {len(report.per_query)} "
        f"judged queries with exact products; predict p50 {report.predict_ms_p50:.3f} ms beyond the query embedding",
        f"{'predictor':<18} {'top-1 [95% CI]':<22} {'top-3 [95% CI]':<22} {'log-loss [95% CI]':<22}",
    ]
    for name in PREDICTORS:
        t1, t3, ll = report.accuracy(name, 1), report.accuracy(name, 3), report.log_loss(name)
        lines.append(
            f"{name:<18} {t1.mean:.3f} [{t1.low:.3f}, {t1.high:.3f}]   {t3.mean:.3f} [{t3.low:.3f}, {t3.high:.3f}]   "
            f"{ll.mean:.3f} [{ll.low:.3f}, {ll.high:.3f}]"
        )
    count, ordered, gain = report.facet_top("count"), report.facet_top("intent"), report.facet_top_gain()
    lines.append(
        f"category facet's first value is an exact product's category: count order {count.mean:.3f} "
        f"[{count.low:.3f}, {count.high:.3f}], intent order {ordered.mean:.3f} "
        f"[{ordered.low:.3f}, {ordered.high:.3f}], intent minus count {gain.mean:+.3f} "
        f"[{gain.low:+.3f}, {gain.high:+.3f}]"
    )
    off = report.ndcg(OFF)
    base = bootstrap_ci(off)
    lines.append(
        f"first stage (hybrid, window {report.window}) NDCG@10, intent off: "
        f"{base.mean:.4f} [{base.low:.4f}, {base.high:.4f}]; each policy's setting chosen on "
        f"{report.folds - 1} of {report.folds} query folds, scored on the held-out one:"
    )
    for name, values in report.out_of_fold.items():
        ci, diff = bootstrap_ci(values), paired_difference(values, off)
        chosen = ", ".join(f"{b:g}/{t:g}" for b, t in report.chosen[name])
        lines.append(
            f"  {name:<13} {ci.mean:.4f} [{ci.low:.4f}, {ci.high:.4f}]  minus off {diff.mean:+.4f} "
            f"[{diff.low:+.4f}, {diff.high:+.4f}]  (boost/threshold per fold: {chosen})"
        )
    if report.served_out_of_fold:
        served_off = bootstrap_ci(report.served_ndcg(OFF))
        lines.append(
            f"served ranking (that window reranked by {report.reranker}) NDCG@10, intent off: "
            f"{served_off.mean:.4f} [{served_off.low:.4f}, {served_off.high:.4f}]; chosen out of fold on served NDCG:"
        )
        for name, values in report.served_out_of_fold.items():
            ci, diff = bootstrap_ci(values), paired_difference(values, report.served_ndcg(OFF))
            chosen = ", ".join(f"{b:g}/{t:g}" for b, t in report.served_chosen[name])
            lines.append(
                f"  {name:<13} {ci.mean:.4f} [{ci.low:.4f}, {ci.high:.4f}]  minus off {diff.mean:+.4f} "
                f"[{diff.low:+.4f}, {diff.high:+.4f}]  (boost/threshold per fold: {chosen})"
            )
    return "\n".join(lines)
