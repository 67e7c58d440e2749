"""Helpers for sidecar tests: requests with realistic product text, in-process servers, slowed models."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc

from shoprank.settings import Settings
from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.batched_scorer import BatchedScorer
from sidecar.model_loading import load_service
from sidecar.rerank_service import RerankService
from sidecar.server import Sidecar, start_sidecar

WORDS = [
    "cotton",
    "kitchen",
    "towel",
    "set",
    "grey",
    "absorbent",
    "quick",
    "dry",
    "stoneware",
    "mug",
    "coffee",
    "tea",
    "ceramic",
    "large",
    "handle",
    "usb",
    "charger",
    "fast",
    "laptop",
    "phone",
    "cable",
    "braided",
    "wireless",
    "earbuds",
    "noise",
    "cancelling",
    "bluetooth",
    "case",
]


def product_text(rng: random.Random, words: int) -> str:
    """Shop-like filler text of about `words` words."""
    return " ".join(rng.choice(WORDS) for _ in range(words))


def candidates(count: int, seed: int = 0, bullet_words: int = 60) -> list[pb.Candidate]:
    """`count` candidates with varied lengths (some truncated at 128 tokens, some short)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        out.append(
            pb.Candidate(
                id=f"p{seed}-{i}",
                first_stage_score=float(count - i),
                product=pb.Product(
                    title=product_text(rng, rng.randint(3, 14)),
                    brand=rng.choice(["Acme", "Utopia", "Anker", ""]),
                    category=["Home", rng.choice(["Kitchen", "Bath", "Electronics"])],
                    color=rng.choice(["grey", "blue", ""]),
                    bullet_points=product_text(rng, rng.randint(0, bullet_words)),
                ),
            )
        )
    return out


def request(
    count: int = 20, seed: int = 0, query: str = "grey cotton kitchen towels", top_k: int = 10
) -> pb.RerankRequest:
    """A valid Rerank request."""
    return pb.RerankRequest(query=query, top_k=top_k, candidates=candidates(count, seed))


def settings_with(models: Path, tmp: Path, **overrides: object) -> Settings:
    """Settings on a fresh data dir whose models/ links to `models`; listens on a free port."""
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    link = data_dir / "models"
    if not link.exists():
        link.symlink_to(models, target_is_directory=True)
    values: dict[str, object] = {"listen": "127.0.0.1:0", "metrics_listen": "", **overrides}
    return Settings(data_dir=data_dir, **values)  # type: ignore[arg-type]


@contextmanager
def running(
    settings: Settings, loader: Callable[[Settings], RerankService] = load_service
) -> Iterator[tuple[Sidecar, pb_grpc.RerankerStub]]:
    """A started sidecar (model loaded) and a stub on a plaintext channel; stopped afterwards."""
    sidecar = start_sidecar(settings, loader, background_load=False)
    channel = grpc.insecure_channel(f"127.0.0.1:{sidecar.port}")
    try:
        yield sidecar, pb_grpc.RerankerStub(channel)
    finally:
        channel.close()
        sidecar.shutdown(0)


def slowed_loader(seconds_per_call: float, seconds_per_token: float = 0.0) -> Callable[[Settings], RerankService]:
    """load_service, with each inference call taking at least a fixed time plus a time per padded
    token: a model of known capacity."""

    def load(settings: Settings) -> RerankService:
        service = load_service(settings)
        scorer = service.scorer
        assert isinstance(scorer, BatchedScorer)
        infer = scorer.encoder.infer

        def slow(ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]]) -> object:
            started = time.monotonic()
            logits = infer(ids, type_ids)
            cost = seconds_per_call + seconds_per_token * len(ids) * max(len(i) for i in ids)
            time.sleep(max(0.0, cost - (time.monotonic() - started)))
            return logits

        scorer.encoder.infer = slow  # type: ignore[method-assign,assignment]
        return service

    return load
