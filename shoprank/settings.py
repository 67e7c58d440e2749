"""Process settings: one typed object, every field settable by environment and by CLI flag.

Precedence: CLI flag > environment variable (`SHOPRANK_<FIELD>`) > default. Each field's
description is its documentation (the CLI help and the table in docs/settings.md are built from it).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shoprank.errors import UserInputError
from shoprank.limits import MAX_CANDIDATES, MAX_FIELD_BYTES, MAX_REQUEST_BYTES
from shoprank.listen import parse_listen
from shoprank.vocabulary import DiversityFacet, DiversityMethod

REPO_ROOT = Path(__file__).resolve().parent.parent

Device = Literal["auto", "cpu", "cuda"]
EngineName = Literal["lancedb", "opensearch"]
HybridTechnique = Literal["min_max", "rrf"]


# Settings that hold or point at a secret: never exported to a child that does not need them.
SECRET_SETTINGS = ("opensearch_password", "opensearch_password_file")


class Settings(BaseSettings):
    """Everything a shoprank process can be told; see `shoprank --help`."""

    model_config = SettingsConfigDict(env_prefix="SHOPRANK_", extra="ignore")

    # Where things live
    data_dir: Path = Field(Path(".shoprank"), description="where indices and built models live")
    opensearch_dir: Path = Field(REPO_ROOT / "opensearch", description="index template and pipeline JSON")

    # Engine
    engine: EngineName = Field("lancedb", description="first-stage engine: embedded lancedb or opensearch")
    index_name: str = Field("products", description="alias (OpenSearch) / live-table name (LanceDB)")
    opensearch_url: str = Field("", description="OpenSearch URL, e.g. https://localhost:9200")
    opensearch_user: str = Field("admin", description="OpenSearch user")
    opensearch_password: SecretStr = Field(
        SecretStr(""), description="OpenSearch password (never logged; a flag shows it in `ps`: prefer the file)"
    )
    opensearch_password_file: Path | None = Field(
        None, description="file holding the OpenSearch password (kept out of `ps` and the environment)"
    )
    opensearch_verify_certs: bool = Field(True, description="verify the cluster's TLS certificate")
    opensearch_ca_certs: Path | None = Field(None, description="CA bundle that signed the cluster's certificate")
    opensearch_timeout_s: float = Field(30.0, gt=0, description="OpenSearch request timeout in seconds")
    opensearch_hybrid_technique: HybridTechnique = Field(
        "min_max", description="OpenSearch hybrid search pipeline: min_max normalisation (weighted) or rrf"
    )
    opensearch_bulk_chunk_docs: int = Field(500, ge=1, description="most documents in one OpenSearch bulk request")
    opensearch_bulk_chunk_bytes: int = Field(
        10_000_000, ge=10_000, description="most bytes in one OpenSearch bulk request"
    )
    opensearch_bulk_max_retries: int = Field(
        5, ge=0, description="retries of bulk items rejected with 429 (other item errors are not retried)"
    )
    opensearch_bulk_initial_backoff_s: int = Field(1, ge=0, description="first 429 retry wait; doubles per retry")
    opensearch_bulk_max_backoff_s: int = Field(30, ge=0, description="cap on the 429 retry wait")
    opensearch_build_lease_s: int = Field(
        600, ge=30, description="an unfinished index whose builder was silent this long is orphaned and cleaned"
    )
    keep_versions: int = Field(2, ge=1, description="physical index versions kept for rollback")

    # Retrieval and page
    rerank_window: int = Field(100, ge=1, le=1000, description="first-stage hits sent to the reranker")
    page_size: int = Field(10, ge=1, le=100, description="results per page")
    hybrid_weight_knn: float = Field(0.5, ge=0.0, le=1.0, description="weight of kNN in min-max hybrid fusion")

    # Sidecar (client side)
    sidecar: str = Field("127.0.0.1:50051", description="sidecar address the front door calls")
    sidecar_deadline_ms: int = Field(3000, ge=10, description="deadline for one Rerank call; fail-open after")
    embed_deadline_ms: int = Field(
        200, ge=1, description="deadline of the plugin's Embed call (shoprank_embed in `opensearch setup`'s pipeline)"
    )

    # Sidecar (server side)
    listen: str = Field("127.0.0.1:50051", description="address the sidecar binds")
    device: Device = Field("auto", description="onnxruntime device: auto picks CUDA when available")
    bi_encoder_precision: Literal["fp32", "fp16", "int8"] = Field(
        "fp32",
        description="bi-encoder ONNX precision for products AND queries (reindex after changing it)",
    )
    # Dynamic int8 trades NDCG@10 for CPU time; whether calibrated static int8 trades less is not settled
    # (figures: docs/benchmarks.md).
    cross_encoder_precision: Literal["auto", "fp32", "fp16", "int8", "int8-static"] = Field(
        "auto",
        description="cross-encoder ONNX precision the sidecar serves: auto is fp16 on CUDA and dynamic int8 on CPU; "
        "int8-static serves the calibrated static int8 `shoprank models build` makes beside it",
    )
    max_pair_tokens: int = Field(128, ge=16, le=512, description="token budget of one query-product pair")
    cascade_top_k: int = Field(
        0,
        ge=0,
        description="score the window with the cheap cascade scorer and only its top K with the full cross-encoder "
        "(0: the full model scores every candidate)",
    )
    cascade_scorer: Literal["first_stage", "model"] = Field(
        "first_stage",
        description="the cascade's cheap scorer: first_stage (the order candidates arrive in, free) or model (the "
        "layer-truncated cross-encoder `shoprank models build --only cascade` makes)",
    )
    max_candidates: int = Field(MAX_CANDIDATES, ge=1, description="most candidates one Rerank request may carry")
    # Chosen on the dev queries for the released cross-encoder (models/cross-encoder/MODEL_CARD.md):
    # it alone loses to hybrid end to end (it lifts unjudged look-alikes); blended at 0.5 it wins.
    blend_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="sidecar default weight of the first-stage score in the blend"
    )
    # Off by default: out of fold over the 100 judged queries it did not beat the blend (docs/quality.md).
    ltr: bool = Field(
        False,
        description="rank the cross-encoder's window with the learning-to-rank model (models dir ltr/, "
        "`shoprank train-ltr`) in place of the blend; skipped, with a warning, when there is none for the serving "
        "cross-encoder",
    )
    # DPP at 0.1 on a similarity that is 0.75 catalogue structure (same brand / leaf category) and
    # 0.25 embedding cosine, chosen over all 100 judged queries, each reranked by a model that
    # never saw it (`shoprank train --holdout train` / `--holdout dev` / the release, then
    # `shoprank eval-pool`); docs/quality.md has the table. No setting reached the issue's +20%
    # category and brand coverage@10 within 1% NDCG@10.
    diversity_method: DiversityMethod = Field(
        "dpp", description="sidecar default diversity method, for requests that name none (none: relevance order)"
    )
    diversity_strength: float = Field(
        0.1, ge=0.0, le=1.0, description="sidecar default diversity strength, for requests that give none"
    )
    diversity_window: int = Field(
        10, ge=1, description="sidecar default DPP window: each pick is diversified against the previous window - 1"
    )
    diversity_attribute_weight: float = Field(
        0.75,
        ge=0.0,
        le=1.0,
        description="sidecar default share of attribute similarity (same brand / leaf category) in MMR and DPP's "
        "similarity, the rest embedding cosine",
    )
    diversity_facets: Annotated[tuple[DiversityFacet, ...], NoDecode] = Field(
        ("category", "brand"),
        min_length=1,
        description="sidecar default xQuAD aspects, for requests that name none: category, brand or category,brand",
    )
    # Personalisation (sidecar/personalise.py): beta(n) * cos(user vector, product) added to the blended score
    # Chosen by `shoprank eval-personal` on shoppers of seed 101 (brand+category, strength 0.5, noise 0.3), not the
    # reported seed 7: weight 0.5 with 3 centres was best at histories 3 and 10 (docs/quality.md).
    personal_weight: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="sidecar default cap of beta(n), the weight of the shopper's personal term (0: off; a request "
        "may override it)",
    )
    personal_ramp: int = Field(
        5, ge=1, le=1000, description="interactions at which beta(n) reaches its cap (it ramps linearly from 0 at none)"
    )
    personal_half_life_s: float = Field(
        3 * 86400.0, gt=0.0, description="an interaction's weight halves every this many seconds"
    )
    personal_centres: int = Field(
        3,
        ge=1,
        le=16,
        description="interest centres of the user vector (1: the weighted centroid; more: PinnerSage-style)",
    )

    # Front door (HTTP)
    http_listen: str = Field("127.0.0.1:8080", description="address `shoprank serve` binds")
    search_cache_entries: int = Field(
        256, ge=0, description="ranked rerank windows the front door keeps so pages come from one ordering (0: off)"
    )
    search_cache_ttl_s: float = Field(300.0, ge=0.0, description="seconds a ranked rerank window is kept for paging")

    # Query intent (intent/, built by a full `shoprank index`; defaults chosen by `shoprank eval-intent`)
    intent: bool = Field(False, description="front door default: predict each query's categories and apply them")
    intent_boost: float = Field(
        0.0,
        ge=0.0,
        le=10.0,
        description="front door default weight of P(category | query) added to the min-max scaled first-stage score",
    )
    intent_filter_threshold: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description="front door default: hard-filter to the top category when its probability reaches this (1: never)",
    )
    intent_depth: Literal["leaf", "2"] = Field(
        "leaf", description="taxonomy level the intent model predicts: leaf or 2"
    )
    intent_temperature: float = Field(
        0.05, gt=0.0, le=1.0, description="softmax temperature over the query's category cosines"
    )
    # Learning from shoppers (UBI capture: ubi_queries records of searches, ubi_events from POST /api/events)
    ubi_capture: bool = Field(True, description="record every search and accept POST /api/events (UBI 1.3.0)")
    ubi_application: str = Field(
        "shoprank", min_length=1, max_length=100, description="UBI `application` written on query records"
    )
    ubi_queue_records: int = Field(
        10_000, ge=1, description="UBI records waiting for the writer; beyond it they are dropped and counted"
    )
    ubi_events_per_s: float = Field(
        2000.0, ge=0, description="events POST /api/events takes per second on average (0: unbounded); 429 beyond"
    )
    ubi_retention_days: float = Field(90.0, gt=0, description="embedded UBI tables delete segments older than this")
    ubi_max_bytes: int = Field(
        2 * 2**30, ge=2**20, description="most bytes of each embedded UBI table; oldest segments are deleted beyond"
    )
    interleave_a: str = Field(
        "", description="team-draft interleaving: ranker a, MODE or MODE+rerank (with interleave_b; empty: off)"
    )
    interleave_b: str = Field("", description="team-draft interleaving: ranker b, e.g. bm25 (with interleave_a)")

    # Sidecar: inference, batching, cache
    inference_threads: int = Field(
        0, ge=0, description="onnxruntime intra-op threads of the cross-encoder; 0 = the cores this process may use"
    )
    inference_spinning: bool = Field(
        False,
        description="let onnxruntime threads spin between ops: a little faster on cores of its own, much slower "
        "when the cores are shared",
    )
    batch_token_budget: int = Field(
        8192,
        ge=128,
        description="padded tokens (pairs x longest pair) in one inference call; 8192 suits a CPU, a GPU wants 32768+",
    )
    batch_max_pairs: int = Field(256, ge=1, description="most pairs in one inference call")
    batch_wait_ms: float = Field(
        0.0, ge=0.0, le=100.0, description="wait this long for more requests before a batch (0: batch what is queued)"
    )
    queue_max_pairs: int = Field(
        2000, ge=1, description="most pairs waiting for the model; beyond it requests get RESOURCE_EXHAUSTED"
    )
    embed_queue_max_texts: int = Field(
        512,
        ge=1,
        description="most texts waiting for the bi-encoder (Embed); beyond it requests get RESOURCE_EXHAUSTED",
    )
    product_token_cache_entries: int = Field(
        20_000, ge=0, description="LRU of tokenized product texts per model, so a request tokenizes only its query"
    )
    score_cache_entries: int = Field(
        50_000, ge=0, description="LRU cache of (model, template, query, product) scores; 0 turns it off"
    )
    max_field_bytes: int = Field(
        MAX_FIELD_BYTES, ge=64, description="most UTF-8 bytes in one product field of a request"
    )
    max_request_bytes: int = Field(
        MAX_REQUEST_BYTES, ge=1024, description="most bytes in one Rerank request (INVALID_ARGUMENT beyond)"
    )
    drain_seconds: float = Field(10.0, ge=0.0, description="on SIGTERM, how long in-flight requests may finish")
    exit_with_parent: bool = Field(
        False, description="sidecar: drain and exit when the process that started it dies (serve sets it for its child)"
    )
    ready_file: Path | None = Field(
        None, description="file the sidecar writes its bound address to (JSON) once listening, for supervisors"
    )

    # Sidecar: operations
    metrics_listen: str = Field(
        "127.0.0.1:9464",
        description="address of the sidecar's HTTP endpoint: GET /metrics (Prometheus), POST /-/reload; empty = off",
    )
    log_format: Literal["text", "json"] = Field("text", description="log lines as text or JSON objects")
    tls_cert: Path | None = Field(None, description="sidecar TLS certificate chain (PEM); with tls_key enables TLS")
    tls_key: Path | None = Field(None, description="sidecar TLS private key (PEM)")
    tls_client_ca: Path | None = Field(
        None, description="CA bundle (PEM) the sidecar requires client certificates from (mTLS)"
    )
    sidecar_tls_ca: Path | None = Field(
        None, description="CA bundle (PEM) the front door verifies the sidecar with; set to call it over TLS"
    )
    sidecar_tls_cert: Path | None = Field(None, description="front door's client certificate (PEM) for mTLS")
    sidecar_tls_key: Path | None = Field(None, description="front door's client private key (PEM) for mTLS")
    sidecar_tls_server_name: str = Field(
        "", description="name expected in the sidecar's certificate when it differs from the address host"
    )

    @field_validator("diversity_facets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        """Environment and flags give "category,brand"; Python callers may give a sequence."""
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("listen", "http_listen", "metrics_listen")
    @classmethod
    def _listen_address(cls, value: str, info: ValidationInfo) -> str:
        """Refused at start, naming the flag, rather than when a server binds (metrics: empty is off)."""
        if value or info.field_name != "metrics_listen":
            parse_listen(value, info.field_name or "listen")
        return value

    @field_validator("opensearch_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        """A password in the URL would reach logs and `ps`; every command refuses it here, once."""
        problem = credentials_in_url(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _password_from_file(self) -> Settings:
        """Read opensearch_password_file into opensearch_password (one of the two, not both)."""
        path = self.opensearch_password_file
        if path is None:
            return self
        if self.opensearch_password.get_secret_value():
            raise ValueError("give the OpenSearch password once: --opensearch-password-file or the password, not both")
        try:
            secret = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise ValueError(f"--opensearch-password-file {path}: {error.strerror or error}") from error
        self.opensearch_password = SecretStr(secret)
        return self

    def models_dir(self) -> Path:
        """Directory of built ONNX models."""
        return self.data_dir / "models"


def credentials_in_url(url: str) -> str | None:
    """What to do instead when an OpenSearch URL carries a user or password (None when it does not)."""
    parts = urlsplit(url.strip())
    if parts.username is None and parts.password is None:
        return None
    return (
        "put the OpenSearch user and password in --opensearch-user and --opensearch-password-file "
        "(or SHOPRANK_OPENSEARCH_PASSWORD), not in --opensearch-url"
    )


def environment_value(value: object) -> str:
    """A setting's value as its SHOPRANK_<NAME> variable reads it back (tuples comma-separated)."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


SettingGroup = Literal[
    "general",
    "engine",
    "index",
    "models",
    "retrieval",
    "ranking",
    "request_limits",
    "sidecar_client",
    "sidecar_server",
    "frontdoor",
    "intent",
    "ubi",
]

# Every setting belongs to exactly one group (tests/test_settings_groups.py fails otherwise): a
# command's --help lists the groups it reads, and docs/settings.md has one table per group.
SETTING_GROUPS: dict[SettingGroup, tuple[str, tuple[str, ...]]] = {
    "general": ("where things live, logs", ("data_dir", "opensearch_dir", "log_format")),
    "engine": (
        "the first-stage engine and the OpenSearch cluster",
        (
            "engine",
            "index_name",
            "opensearch_url",
            "opensearch_user",
            "opensearch_password",
            "opensearch_password_file",
            "opensearch_verify_certs",
            "opensearch_ca_certs",
            "opensearch_timeout_s",
            "opensearch_hybrid_technique",
            "keep_versions",
        ),
    ),
    "index": (
        "writing an index (OpenSearch bulk and build lease)",
        (
            "opensearch_bulk_chunk_docs",
            "opensearch_bulk_chunk_bytes",
            "opensearch_bulk_max_retries",
            "opensearch_bulk_initial_backoff_s",
            "opensearch_bulk_max_backoff_s",
            "opensearch_build_lease_s",
        ),
    ),
    "models": (
        "the ONNX models and where they run",
        ("device", "bi_encoder_precision", "cross_encoder_precision", "max_pair_tokens"),
    ),
    "retrieval": ("the rerank window and the page", ("rerank_window", "page_size", "hybrid_weight_knn")),
    "ranking": (
        "the sidecar's default blend and diversity (requests may override them)",
        (
            "blend_weight",
            "ltr",
            "personal_weight",
            "personal_ramp",
            "personal_half_life_s",
            "personal_centres",
            "cascade_top_k",
            "cascade_scorer",
            "diversity_method",
            "diversity_strength",
            "diversity_window",
            "diversity_attribute_weight",
            "diversity_facets",
        ),
    ),
    "request_limits": (
        "bounds on one Rerank request (the client fits to them, the sidecar enforces them)",
        ("max_candidates", "max_field_bytes", "max_request_bytes"),
    ),
    "sidecar_client": (
        "how the front door calls the sidecar",
        (
            "sidecar",
            "sidecar_deadline_ms",
            "embed_deadline_ms",
            "sidecar_tls_ca",
            "sidecar_tls_cert",
            "sidecar_tls_key",
            "sidecar_tls_server_name",
        ),
    ),
    "sidecar_server": (
        "the sidecar process: listening, batching, cache, drain, operations, TLS",
        (
            "listen",
            "inference_threads",
            "inference_spinning",
            "batch_token_budget",
            "batch_max_pairs",
            "batch_wait_ms",
            "queue_max_pairs",
            "embed_queue_max_texts",
            "product_token_cache_entries",
            "score_cache_entries",
            "drain_seconds",
            "exit_with_parent",
            "ready_file",
            "metrics_listen",
            "tls_cert",
            "tls_key",
            "tls_client_ca",
        ),
    ),
    "frontdoor": (
        "the HTTP front door",
        ("http_listen", "search_cache_entries", "search_cache_ttl_s", "interleave_a", "interleave_b"),
    ),
    "intent": (
        "query intent: P(category | query)",
        ("intent", "intent_boost", "intent_filter_threshold", "intent_depth", "intent_temperature"),
    ),
    "ubi": (
        "learning from shoppers: UBI capture",
        (
            "ubi_capture",
            "ubi_application",
            "ubi_queue_records",
            "ubi_events_per_s",
            "ubi_retention_days",
            "ubi_max_bytes",
        ),
    ),
}
ALL_GROUPS: tuple[SettingGroup, ...] = tuple(SETTING_GROUPS)


def group_of(name: str) -> SettingGroup:
    """The group a setting belongs to; a setting in none is a bug with a fix to name."""
    for group, (_, names) in SETTING_GROUPS.items():
        if name in names:
            return group
    raise KeyError(
        f"setting {name!r} is in no group: add it to one of SETTING_GROUPS in shoprank/settings.py "
        f"({', '.join(SETTING_GROUPS)}) and to that group's table in docs/settings.md"
    )


def add_settings_flags(parser: argparse.ArgumentParser, groups: Sequence[SettingGroup] = ALL_GROUPS) -> None:
    """Add one `--flag` per settings field; unset flags leave env/defaults alone.

    Every flag is accepted on every command (a script that passes one keeps working); --help lists
    only the `groups` the command reads, each under its own heading.
    """
    shown = {group: _help_group(parser, group) for group in groups}
    for name, field in Settings.model_fields.items():
        group = shown.get(group_of(name))
        flag = "--" + name.replace("_", "-")
        help_text = f"{field.description} (default: {environment_value(field.default)})"
        target: Any = group if group is not None else parser
        help_shown = help_text if group is not None else argparse.SUPPRESS
        if field.annotation is bool:
            target.add_argument(
                flag,
                dest=f"setting_{name}",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=help_shown,
            )
        else:
            target.add_argument(
                flag, dest=f"setting_{name}", metavar=name.upper(), default=argparse.SUPPRESS, help=help_shown
            )


def _help_group(parser: argparse.ArgumentParser, group: SettingGroup) -> Any:
    title, _ = SETTING_GROUPS[group]
    return parser.add_argument_group(f"{group} settings: {title} (also SHOPRANK_<NAME> variables)")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build the process settings from parsed CLI flags over the environment."""
    overrides: dict[str, Any] = {
        key.removeprefix("setting_"): value for key, value in vars(args).items() if key.startswith("setting_")
    }
    try:
        return Settings(**overrides)
    except ValidationError as error:
        # pydantic's own message repeats each input, which may be a secret (a password in a URL).
        raise UserInputError("; ".join(map(_problem, error.errors()))) from None


def _problem(error: Any) -> str:
    """One validation error as '--flag: what is wrong', without the value given."""
    message = str(error["msg"]).removeprefix("Value error, ")
    flag = "-".join(map(str, error["loc"])).replace("_", "-")
    return f"--{flag}: {message}" if flag and not message.startswith(f"--{flag} ") else message
