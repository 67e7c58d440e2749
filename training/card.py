"""The model card (MODEL_CARD.md) beside released weights, rendered from the training record.

It says what the model is (version id, base, template), what it was trained on (data digests,
the by-query split), how (the full recipe, wall time, hardware), and how well it does: dev
figures of the recipe's dev run and, when given, a `shoprank eval --json` report on held-out
queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.config import TrainConfig


def _figures(figures: Mapping[str, Any]) -> str:
    return ", ".join(f"{name} {value:.4f}" for name, value in figures.items() if isinstance(value, float))


def _eval_section(report: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Held-out evaluation (`shoprank eval`)",
        "",
        f"Judgments `{report.get('judgments', '?')}`, {report.get('queries', '?')} queries the model was not "
        f"trained on; {report.get('hardware', '')}. NDCG with ESCI gains (E=1, S=0.1, C=0.01, I=0), "
        "95% bootstrap intervals over queries."
        + (
            f" Rerank stages blend in the first-stage score at weight {report['blend_weight']}."
            if "blend_weight" in report
            else ""
        ),
        "",
    ]
    for mode, data in report.get("modes", {}).items():
        lines += [f"### {mode}", "", "| stage | NDCG@10 [95% CI] | NDCG@5 | MRR | ms/query |", "|---|---|---|---|---|"]
        for stage, s in data.get("stages", {}).items():
            low, high = s["ci"]["ndcg@10"]
            lines.append(
                f"| {stage} | {s['ndcg@10']:.3f} [{low:.3f}, {high:.3f}] | {s['ndcg@5']:.3f} | {s['mrr']:.3f} | "
                f"{s['seconds_per_query'] * 1e3:.0f} |"
            )
        lines += ["", "Paired NDCG@10 differences:", ""]
        for c in data.get("comparisons", []):
            low, high = c["ci"]
            lines.append(f"- {c['result']} vs {c['baseline']}: {c['difference']:+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append("")
    targets = report.get("targets", {})
    if targets:
        lines += ["Targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()), ""]
    return lines


def render_card(
    record: Mapping[str, Any],
    dev_record: Mapping[str, Any] | None = None,
    eval_report: Mapping[str, Any] | None = None,
    notes: str = "",
) -> str:
    """MODEL_CARD.md text for a training record (and optionally its dev run, a held-out eval and
    free-form notes, e.g. how the recipe was chosen)."""
    data, split, config = record["data"], record["split"], record["config"]
    counts = split["counts"]
    trained_on = {"test": "train + dev", "dev": "train", "train": "dev + test"}[config["holdout"]]
    lines = [
        f"# shoprank cross-encoder `{record['version']}`",
        "",
        f"`BertForSequenceClassification(num_labels=1)` initialised from `{record['base_model']}` and fine-tuned "
        "to score (shopper query, product) pairs for reranking. Input: the query and the product text of "
        f"shoprank's template `{record['template_version']}` (shoprank/template.py), product side truncated to "
        f"{config['max_tokens']} tokens per pair. Output: one relevance logit (higher is more relevant).",
        "",
        "Stored as fp16 safetensors; `shoprank models build` exports fp32/int8/fp16 ONNX with a PyTorch parity "
        "check and the sidecar reports this version id.",
        "",
        "## Data",
        "",
        f"- Judgments: `{data['judgments']}` (sha256 `{data['judgments_sha256'][:16]}…`): {data['queries']} real "
        f"shop queries, {data['pairs']} graded pairs (Amazon ESCI, Apache-2.0).",
        f"- Catalogue: `{data['catalogue']}` (sha256 `{data['catalogue_sha256'][:16]}…`), {data['products']} "
        "products; source of hard negatives and pseudo-queries.",
        f"- Split by query, never by pair, seed {split['seed']}: {counts['train']} train, {counts['dev']} dev, "
        f"{counts['test']} test queries. This model was trained on {trained_on} "
        f"({len(record['trained_queries'])} queries); the test queries were never used for training or choices.",
        f"- Training groups: {record['groups']}.",
        "",
        "## Recipe",
        "",
        "| setting | value | meaning |",
        "|---|---|---|",
    ]
    for name, field in TrainConfig.model_fields.items():
        lines.append(f"| {name} | {config.get(name)} | {field.description or ''} |")
    lines += [
        "",
        f"Trained in {record['train_seconds']:.0f} s ({record['total_seconds']:.0f} s with data preparation and "
        f"export) on {record['hardware']}; {record['pairs_seen']} pairs seen; software {record['software']}.",
        "Reproduce: `shoprank train` (same data, same defaults) gives the same weights and version id on the same "
        "thread count.",
        "",
        "## Dev figures",
        "",
    ]
    if record.get("dev"):
        lines.append(f"This run's dev queries: {_figures(record['dev'])}.")
    if dev_record:
        lines.append(
            f"The same recipe trained on the train queries only (`--holdout dev`, version {dev_record['version']}), "
            f"reranking the judged lists of the {dev_record['split']['counts']['dev']} dev queries: "
            f"{_figures(dev_record['dev'])}."
        )
    if not record.get("dev") and not dev_record:
        lines.append("No dev run recorded.")
    lines.append("")
    if notes.strip():
        lines += [notes.strip(), ""]
    if eval_report:
        lines += _eval_section(eval_report)
    lines += [
        "## Limits",
        "",
        "- A hundred judged queries are few: figures on 30 held-out queries have wide intervals (stated above).",
        "- English product text; trained on an Amazon-like catalogue mix (fashion, home, tools, grocery, books).",
        "",
    ]
    return "\n".join(lines)
