"""`shoprank bench index`: end-to-end indexing throughput beside the raw bi-encoder's on the same texts.

For each catalogue (the ESCI sample, and catalogues generated from it at the sizes asked for)
two measurements run, each in a subprocess of its own so that its peak RSS is its own:

- raw: the bi-encoder alone embedding the catalogue's product texts, batch after batch, with the
  session settings the indexer uses (the baseline: what embedding costs with nothing else);
- end to end: `Indexer.full` into a fresh LanceDB directory: read, validate, embed, write, build
  the indices, swap (what a reindex costs).

The ratio end-to-end / raw says what parsing, validation and writing cost (target >= 0.8); the
peak RSS of the largest generated catalogue over the smallest says whether memory stays flat
(target <= 1.5 for 200k vs 20k products). On a shared machine figures drift with the load
(printed): compare the two columns of one run, not figures of different runs.

ESCI is always embedded by the real bi-encoder. Generated catalogues are embedded by a cheap
token-hashing encoder unless `--generated-encoder model` (benchmarks/hashed_encoder.py): 200k
products through the real bi-encoder take ~45 minutes per pass here, and the memory check is
about everything but the model. The report says which encoder made each row.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks.hardware import describe, load_average, summary
from benchmarks.index_opensearch import (
    BenchCluster,
    end_to_end_opensearch,
    node_memory_mib,
    opensearch_for_bench,
    opensearch_lines,
)
from shoprank.errors import MissingFileError, UserInputError
from shoprank.settings import REPO_ROOT, Settings

ESCI_CATALOGUE = REPO_ROOT.parent / "shared" / "data" / "esci" / "products.ndjson"
DEFAULT_GENERATED = "20000,200000"
DEFAULT_RAW_SAMPLE = 4096
TARGET_RATIO = 0.8
TARGET_MEMORY_GROWTH = 1.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's own flags (the settings flags come with the command)."""
    parser.add_argument("--esci", type=Path, default=ESCI_CATALOGUE, help="ESCI products.ndjson (the real catalogue)")
    parser.add_argument("--no-esci", action="store_true", help="skip the ESCI catalogue")
    parser.add_argument(
        "--generated",
        default=DEFAULT_GENERATED,
        help=f"sizes of generated catalogues, comma-separated ('' for none; default {DEFAULT_GENERATED}: "
        "the memory check, 200k vs 20k products)",
    )
    parser.add_argument(
        "--generated-encoder",
        choices=("hashed", "model"),
        default="hashed",
        help="what embeds the generated catalogues: a token-hashing stand-in with no model (default: seconds "
        "for 200k products; measures everything but the model) or the real bi-encoder (~45 min per pass "
        "over 200k products on 2 cores)",
    )
    parser.add_argument(
        "--raw-sample",
        type=int,
        default=DEFAULT_RAW_SAMPLE,
        help="raw embedding of a generated catalogue is timed on its first N texts (0: all); ESCI always all",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="products per batch, as `shoprank index`")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default: all cores)")
    parser.add_argument(
        "--with-opensearch",
        action="store_true",
        help="also index each catalogue into OpenSearch beside LanceDB: the cluster at --opensearch-url, or a "
        "local node started for the run (JDK 17+ and Maven, as `shoprank opensearch run`), under a throw-away alias",
    )
    parser.add_argument(
        "--bulk-chunk-docs",
        default="",
        help="with --with-opensearch, the bulk chunk sizes to compare, comma-separated (default: the "
        "opensearch_bulk_chunk_docs setting)",
    )
    parser.add_argument("--output", type=Path, help="also save the results as JSON here")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run every measurement and print them beside each other, with the hardware."""
    from shoprank.model_meta import BI_ENCODER, load_metadata, model_dir

    meta = load_metadata(model_dir(settings.models_dir(), BI_ENCODER))
    sizes = [int(s) for s in str(args.generated).split(",") if s.strip()]
    if args.no_esci and not sizes:
        raise UserInputError("nothing to measure: drop --no-esci or pass --generated SIZES")
    config = {
        "models_dir": str(settings.models_dir().resolve()),
        "precision": settings.bi_encoder_precision,
        "threads": args.threads,
        "batch_size": args.batch_size,
    }
    results: dict[str, Any] = {
        "benchmark": "index",
        "hardware": describe(),
        "model": {"version": meta.version, "precision": settings.bi_encoder_precision, "max_length": meta.max_length},
        "config": {
            **config,
            "raw_sample": args.raw_sample,
            "generated": sizes,
            "generated_encoder": args.generated_encoder,
        },
        "catalogues": [],
    }
    chunks = [int(c) for c in str(args.bulk_chunk_docs).split(",") if c.strip()] or [
        settings.opensearch_bulk_chunk_docs
    ]
    _say(args, f"hardware: {summary(results['hardware'])}")
    with tempfile.TemporaryDirectory(prefix="shoprank-bench-index-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        cluster = stack.enter_context(opensearch_for_bench(settings, work)) if args.with_opensearch else None
        if cluster:
            results["opensearch"] = {"url": cluster.url, "local_node": cluster.pid is not None, "chunks": chunks}
        catalogues: list[tuple[str, Path, int]] = []
        if not args.no_esci:
            if not args.esci.is_file():
                raise MissingFileError(f"no ESCI catalogue at {args.esci}; pass --esci PATH or --no-esci")
            catalogues.append(("esci", args.esci, 0))
        if sizes:
            from benchmarks.generated_catalogue import load_sample, write_generated

            sample = load_sample(args.esci)
            for size in sizes:
                path = write_generated(sample, size, work / f"generated-{size}.jsonl")
                catalogues.append((f"generated-{size}", path, args.raw_sample))
        for name, path, raw_sample in catalogues:
            encoder = "model" if name == "esci" else args.generated_encoder
            job = config | {"encoder": encoder}
            # The baseline is timed before and after the end-to-end run: on a shared machine the
            # load moves between them, and their mean is the fairer baseline (both are reported).
            raw_before = _measure("raw", path, job | {"limit": raw_sample}, work)
            _say(
                args,
                f"{name}: raw {encoder} encoder {raw_before['docs_per_s']:.1f} docs/s on {raw_before['docs']} texts",
            )
            e2e = _measure("e2e", path, job, work)
            _say(args, f"{name}: end to end {e2e['docs_per_s']:.1f} docs/s ({e2e['docs']} products)")
            raw_after = _measure("raw", path, job | {"limit": raw_sample}, work)
            raw = _mean_raw(raw_before, raw_after)
            ratio = round(e2e["docs_per_s"] / raw["docs_per_s"], 3)
            _say(args, f"{name}: raw again {raw_after['docs_per_s']:.1f} docs/s; end-to-end / raw = {ratio:.2f}")
            row = {"name": name, "encoder": encoder, "raw": raw, "end_to_end": e2e, "ratio": ratio}
            if cluster:
                row["opensearch"] = [
                    _measure_opensearch(cluster, path, job | {"chunk_docs": chunk}, work, args, name)
                    for chunk in chunks
                ]
            results["catalogues"].append(row)
    results["memory"] = _memory_growth(results["catalogues"])
    results["hardware"]["load_average_end"] = load_average()
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report_text(results))
    return 0


def _say(args: argparse.Namespace, line: str) -> None:
    # Progress goes to stderr, so stdout stays the report (or the JSON).
    print(line, file=sys.stderr, flush=True)


def _mean_raw(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    rates = [before["docs_per_s"], after["docs_per_s"]]
    return {
        "docs": before["docs"],
        "docs_per_s": round(sum(rates) / 2, 2),
        "docs_per_s_before_after": rates,
        "peak_rss_mib": max(before["peak_rss_mib"], after["peak_rss_mib"]),
    }


def _memory_growth(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    generated = [r for r in rows if r["name"].startswith("generated-")]
    if len(generated) < 2:
        return None
    small = min(generated, key=lambda r: r["end_to_end"]["docs"])
    large = max(generated, key=lambda r: r["end_to_end"]["docs"])
    growth = large["end_to_end"]["peak_rss_mib"] / small["end_to_end"]["peak_rss_mib"]
    return {
        "small": small["name"],
        "large": large["name"],
        "peak_rss_growth": round(growth, 3),
        "target": TARGET_MEMORY_GROWTH,
    }


def report_text(results: dict[str, Any]) -> str:
    """The printed report: one line per catalogue, the baseline beside the result."""
    model, config = results["model"], results["config"]
    lines = [
        f"shoprank bench index: bi-encoder {model['version']} ({model['precision']}), batch {config['batch_size']}, "
        f"threads {config['threads'] or 'all'}",
        f"hardware: {summary(results['hardware'])}; load at end {results['hardware']['load_average_end']}",
        "",
        f"{'catalogue':<18}{'encoder':>8}{'products':>9}{'raw docs/s':>12}{'e2e docs/s':>12}{'ratio':>7}"
        f"{'embed share':>12}{'peak RSS MiB':>14}   raw before/after   "
        "e2e stages s (embed / wait read / wait write / commit)",
    ]
    for row in results["catalogues"]:
        e2e, raw = row["end_to_end"], row["raw"]
        stages = e2e.get("stage_seconds", {})
        lines.append(
            f"{row['name']:<18}{row.get('encoder', 'model'):>8}{e2e['docs']:>9}{raw['docs_per_s']:>12.1f}"
            f"{e2e['docs_per_s']:>12.1f}"
            f"{row['ratio']:>7.2f}{_embed_share(e2e):>12.2f}{e2e['peak_rss_mib']:>14.0f}   "
            + "{:>7.1f} / {:<7.1f}   ".format(*raw["docs_per_s_before_after"])
            + " / ".join(f"{stages.get(k, 0.0):.1f}" for k in ("embed", "wait_read", "wait_write", "commit"))
            + (f"   (raw on {raw['docs']} texts)" if raw["docs"] != e2e["docs"] else "")
        )
    lines.append(
        f"target: end-to-end >= {TARGET_RATIO}x raw (with the model: the hashed encoder's ratio says only "
        "how much of a run is not embedding)"
    )
    lines.append(
        "embed share: the end-to-end run's own embedding time over its wall time (one process, one time: a load "
        "that drifts between the raw and end-to-end runs does not move it; CPU the reader and writer threads "
        "take from the embedder is inside the embed time, so it bounds the ratio from above)"
    )
    lines += opensearch_lines(results)
    hashed_note = _hashed_note(results["catalogues"])
    if hashed_note:
        lines.append(hashed_note)
    memory = results.get("memory")
    if memory:
        lines.append(
            f"memory: peak RSS {memory['large']} / {memory['small']} = {memory['peak_rss_growth']:.2f} "
            f"(target <= {memory['target']} for 200k vs 20k products)"
        )
    return "\n".join(lines)


def _embed_share(e2e: dict[str, Any]) -> float:
    seconds = float(e2e.get("seconds") or 0.0)
    return float(e2e.get("stage_seconds", {}).get("embed", 0.0)) / seconds if seconds > 0 else 0.0


def _hashed_note(rows: list[dict[str, Any]]) -> str | None:
    """Why some rows were not embedded by the model, and what the model would have taken."""
    hashed = [r for r in rows if r.get("encoder") == "hashed"]
    if not hashed:
        return None
    largest = max(r["end_to_end"]["docs"] for r in hashed)
    note = (
        "encoder hashed: token hashing into 384-d unit vectors, no model (benchmarks/hashed_encoder.py), "
        "so the memory check measures reading, validating, writing and index builds"
    )
    model_rates = [r["raw"]["docs_per_s"] for r in rows if r.get("encoder", "model") == "model"]
    if model_rates:
        minutes = largest / max(model_rates) / 60
        note += f"; the bi-encoder would take ~{minutes:.0f} min to embed {largest} products at its raw rate above"
    return note


def _measure_opensearch(
    cluster: BenchCluster, catalogue: Path, job: dict[str, Any], work: Path, args: argparse.Namespace, name: str
) -> dict[str, Any]:
    result = _measure("e2e-opensearch", catalogue, job | {"opensearch_url": cluster.url}, work)
    result["node"] = node_memory_mib(cluster.pid)
    _say(args, f"{name}: opensearch chunk {job['chunk_docs']}: {result['docs_per_s']:.1f} docs/s")
    return result


# ---- measurements, each in its own process -------------------------------------------------


def _measure(kind: str, catalogue: Path, config: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it printed."""
    job = {**config, "kind": kind, "catalogue": str(catalogue), "work": str(work)}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("LANCE_LOG", "error")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.index", json.dumps(job)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} measurement of {catalogue.name} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return _peak_rss_mib()


def _encoder(job: dict[str, Any]) -> Any:
    if job.get("encoder") == "hashed":
        from benchmarks.hashed_encoder import HashedEncoder

        return HashedEncoder()
    from shoprank.bi_encoder import BiEncoder

    # The session settings `shoprank index` uses (see shoprank/cli/index.py): no spinning threads.
    return BiEncoder(Path(job["models_dir"]), precision=job["precision"], threads=job["threads"], spin=False)


def _raw(job: dict[str, Any]) -> dict[str, Any]:
    from indexer.readers import read_catalogue
    from indexer.validate import FieldMapping, validate_row
    from shoprank.schema import Product
    from shoprank.template import bi_encoder_text

    texts: dict[str, str] = {}  # the texts the indexer embeds: valid products, last occurrence of an id
    for row in read_catalogue(Path(job["catalogue"])):
        product = validate_row(row, FieldMapping())
        if isinstance(product, Product):
            texts[product.id] = bi_encoder_text(product)
            if job["limit"] and len(texts) >= job["limit"]:
                break
    batch_texts = list(texts.values())
    encoder = _encoder(job)
    encoder.encode(batch_texts[: job["batch_size"]])  # warm-up, not timed
    started = time.perf_counter()
    for start in range(0, len(batch_texts), job["batch_size"]):
        encoder.encode(batch_texts[start : start + job["batch_size"]])
    seconds = time.perf_counter() - started
    return {
        "docs": len(batch_texts),
        "seconds": round(seconds, 3),
        "docs_per_s": round(len(batch_texts) / seconds, 2),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
    }


def _end_to_end(job: dict[str, Any]) -> dict[str, Any]:
    from engines.lance import LanceEngine
    from indexer.dead_letter import DeadLetter
    from indexer.pipeline import Indexer

    encoder = _encoder(job)
    with tempfile.TemporaryDirectory(dir=job["work"]) as tmp:
        engine = LanceEngine(Path(tmp) / "lancedb")
        rss_ready = _current_rss_mib()
        indexer = Indexer(engine, encoder, DeadLetter(None), batch_size=job["batch_size"])
        started = time.perf_counter()
        report = indexer.full(Path(job["catalogue"]))
        seconds = time.perf_counter() - started
    return {
        "docs": report.indexed,
        "rejected": report.rejected,
        "seconds": round(seconds, 3),
        "docs_per_s": round(report.indexed / seconds, 2),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "rss_ready_mib": round(rss_ready, 1),
        "stage_seconds": report.stage_seconds,
    }


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    if job["kind"] == "raw":
        return _raw(job)
    if job["kind"] == "e2e-opensearch":
        return end_to_end_opensearch(job, _encoder(job), _peak_rss_mib)
    return _end_to_end(job)


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
