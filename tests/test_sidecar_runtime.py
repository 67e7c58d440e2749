"""The cross-encoder runtime: providers and fallback, I/O binding, threads, pair input, no torch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shoprank import onnx_session
from shoprank.onnx_session import CudaUnavailableError, create_session, intra_op_threads, resolve_device
from shoprank.settings import REPO_ROOT, Settings
from shoprank.template import query_text
from sidecar import model_loading
from sidecar.cross_encoder import CrossEncoder
from sidecar.domain import CandidateProduct
from sidecar.onnx_runner import IoBindingRunner, SessionRunner
from tests.sidecar_harness import settings_with

LONG = CandidateProduct(
    title="Utopia Towels kitchen towel set",
    brand="Utopia",
    category=("Home", "Kitchen"),
    color="grey",
    bullet_points="\n".join(["absorbent ring spun cotton quick dry lint free machine washable"] * 40),
    description="a very long description " * 50,
)


def test_io_binding_gives_the_same_logits_as_a_plain_run(tiny_models: Path) -> None:
    plain = CrossEncoder(tiny_models, device="cpu")
    bound = CrossEncoder(tiny_models, device="cpu", io_binding=True)
    assert isinstance(plain._runner, SessionRunner)
    assert isinstance(bound._runner, IoBindingRunner)
    products = [LONG, CandidateProduct(title="mug"), CandidateProduct(title="usb c charger", brand="Anker")]
    a = plain.score("kitchen towels", products).logits
    b = bound.score("kitchen towels", products).logits
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_pairs_truncate_the_product_side_only(tiny_models: Path) -> None:
    encoder = CrossEncoder(tiny_models, max_length=48)
    query = "grey cotton kitchen towels set of six"
    pairs = encoder.tokenize(query, [LONG, CandidateProduct(title="mug")])
    long_ids, long_types = pairs.ids[0], pairs.type_ids[0]
    assert len(long_ids) == 48
    query_only = encoder._tokenizer.encode(query).ids  # [CLS] query [SEP]
    assert long_ids[: len(query_only)] == query_only  # the whole query survives
    assert long_types.count(0) == len(query_only)
    assert long_ids[-1] == encoder._tokenizer.token_to_id("[SEP]")
    assert len(pairs.ids[1]) < 48  # short pairs are not padded here


def test_long_product_texts_tokenize_exactly_as_in_full(tiny_models: Path) -> None:
    encoder = CrossEncoder(tiny_models, max_length=32)
    words = "absorbent ring-spun cotton, quick dry; lint free (set of 6) 漢字 "
    texts = [
        words * 40,  # long: cut before tokenizing, still fills the pair
        "x" * 2000 + " towel",  # no space early on: nothing to cut at
        "supercalifragilisticexpialidocious" * 30 + " " + words,  # one huge word first: nothing to cut at
        "towel " + "y" * 250 + " " + words * 10,  # the cut keeps only "towel": the pair is short, redone in full
        "short text",
    ]
    full = encoder._tokenizer.encode_batch([(query_text("cotton towels"), t) for t in texts])
    pairs = encoder.tokenize_texts("cotton towels", texts)
    assert pairs.ids == [e.ids for e in full]
    assert pairs.type_ids == [e.type_ids for e in full]


def test_a_query_longer_than_half_the_budget_gives_way_instead_of_failing(tiny_models: Path) -> None:
    encoder = CrossEncoder(tiny_models, max_length=32)
    pasted = "漢" * 256  # one token per character: longer than the whole pair budget
    pairs = encoder.tokenize(pasted, [LONG, CandidateProduct(title="mug")])
    assert [len(ids) for ids in pairs.ids] == [32, 32]
    assert all(1 in types for types in pairs.type_ids)  # the product is still there
    assert np.isfinite(encoder.score(pasted, [LONG]).logits).all()


def test_product_fields_reach_the_model_with_explicit_separators(tiny_models: Path) -> None:
    encoder = CrossEncoder(tiny_models, max_length=128)
    sep = encoder._tokenizer.token_to_id("[SEP]")
    assert sep is not None
    product = CandidateProduct(title="mug", brand="Acme", color="blue", category=("Home", "Kitchen"))
    ids = encoder.tokenize("coffee mug", [product]).ids[0]
    # [CLS] query [SEP] title [SEP] brand [SEP] color [SEP] category [SEP]
    assert ids.count(sep) == 5


def test_the_default_max_pair_length_is_128_tokens() -> None:
    assert Settings().max_pair_tokens == 128


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(onnx_session, "cuda_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(CudaUnavailableError, match="--device cpu"):
        resolve_device("cuda")
    monkeypatch.setattr(onnx_session, "cuda_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    assert resolve_device("cpu") == "cpu"


class FakeOrt:
    """Just enough of onnxruntime to see what create_session asks for and what it gets."""

    class GraphOptimizationLevel:
        ORT_ENABLE_ALL = "all"

    class ExecutionMode:
        ORT_SEQUENTIAL = "sequential"

    class SessionOptions:
        def __init__(self) -> None:
            self.entries: dict[str, str] = {}

        def add_session_config_entry(self, key: str, value: str) -> None:
            self.entries[key] = value

    def __init__(self, active: list[str]) -> None:
        self.active = active
        self.asked: list[Any] = []
        self.options: Any = None

    def InferenceSession(self, path: str, sess_options: Any, providers: list[Any]) -> Any:  # noqa: N802
        self.asked, self.options = providers, sess_options
        active = self.active

        class Session:
            def get_providers(self) -> list[str]:
                return active

        return Session()


def test_cuda_session_that_lands_on_the_cpu_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model.fp16.onnx"
    model.write_bytes(b"x")
    fake = FakeOrt(active=["CPUExecutionProvider"])
    monkeypatch.setattr(onnx_session, "_ort", lambda: fake)
    with pytest.raises(CudaUnavailableError, match="could not start CUDA"):
        create_session(model, "cuda")
    name, options = fake.asked[0]
    assert name == "CUDAExecutionProvider"
    assert options["device_id"] == 0
    assert options["do_copy_in_default_stream"] is True
    assert fake.asked[1] == "CPUExecutionProvider"


def test_session_threads_and_spinning_are_applied(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model = tmp_path / "model.int8.onnx"
    model.write_bytes(b"x")
    fake = FakeOrt(active=["CPUExecutionProvider"])
    monkeypatch.setattr(onnx_session, "_ort", lambda: fake)
    create_session(model, "cpu", intra_threads=3, spinning=False)
    assert fake.asked == ["CPUExecutionProvider"]
    assert fake.options.intra_op_num_threads == 3
    assert fake.options.inter_op_num_threads == 1
    assert fake.options.entries["session.intra_op.allow_spinning"] == "0"


def test_threads_are_sized_to_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 1 <= onnx_session.available_cores() <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(onnx_session, "available_cores", lambda: 16)
    assert intra_op_threads("cpu") == 16
    assert intra_op_threads("cuda") == 2
    assert intra_op_threads("cpu", configured=4) == 4


def test_auto_falls_back_to_cpu_int8_when_cuda_fails(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_loading, "resolve_device", lambda device: "cpu" if device == "cpu" else "cuda")
    real = CrossEncoder

    def cross_encoder(*args: Any, **kwargs: Any) -> CrossEncoder:
        if kwargs["device"] == "cuda":
            raise CudaUnavailableError("no GPU in this test")
        return real(*args, **kwargs)

    monkeypatch.setattr(model_loading, "CrossEncoder", cross_encoder)
    encoder = model_loading.open_cross_encoder(settings_with(tiny_models, tmp_path, device="auto"))
    assert (encoder.device, encoder.precision) == ("cpu", "int8")
    with pytest.raises(CudaUnavailableError):
        model_loading.open_cross_encoder(settings_with(tiny_models, tmp_path, device="cuda"))


def test_the_sidecar_never_imports_torch(tiny_models: Path, tmp_path: Path) -> None:
    """Serve a request in a fresh interpreter and list the heavy modules it loaded."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import grpc
        from shoprank.settings import Settings
        from shoprank.v1 import rerank_pb2_grpc as pb_grpc
        from sidecar.server import start_sidecar
        from sidecar.client import RerankClient
        from tests.sidecar_harness import request, settings_with

        settings = settings_with(Path({str(tiny_models)!r}), Path({str(tmp_path)!r}))
        sidecar = start_sidecar(settings, background_load=False)
        stub = pb_grpc.RerankerStub(grpc.insecure_channel(f"127.0.0.1:{{sidecar.port}}"))
        assert stub.Rerank(request(5), timeout=30).reranked
        sidecar.shutdown(0)
        print(sorted(m for m in ("torch", "transformers", "onnx", "onnxruntime.transformers") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_served_precision_is_a_setting(tiny_models: Path, tmp_path: Path) -> None:
    auto = model_loading.open_cross_encoder(settings_with(tiny_models, tmp_path, device="cpu"))
    assert (auto.precision, auto.version.rsplit(":", 1)[1]) == ("int8", "int8")
    chosen = settings_with(tiny_models, tmp_path, device="cpu", cross_encoder_precision="fp32")
    fp32 = model_loading.open_cross_encoder(chosen)
    assert (fp32.precision, fp32.version.rsplit(":", 1)[1]) == ("fp32", "fp32")
    pair = [CandidateProduct(title="kitchen towels", brand="Utopia")]
    # Same weights, other arithmetic: close scores, not the same ones.
    np.testing.assert_allclose(fp32.score("towels", pair).logits, auto.score("towels", pair).logits, atol=0.5)
    assert fp32.score("towels", pair).logits[0] != auto.score("towels", pair).logits[0]
