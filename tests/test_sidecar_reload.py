"""Model hot reload: unsound models are refused and the old one keeps serving; sound ones swap in."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from shoprank.v1 import rerank_pb2 as pb
from shoprank.v1 import rerank_pb2_grpc as pb_grpc
from sidecar.ops_http import OpsEndpoint
from sidecar.process import SidecarProcess
from tests.sidecar_harness import request, running, settings_with, slowed_loader


@pytest.fixture
def models(tiny_models: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cross-encoder that a test may break (the bi-encoder is shared)."""
    copy = tmp_path / "models"
    shutil.copytree(tiny_models / "cross-encoder", copy / "cross-encoder")
    (copy / "bi-encoder").symlink_to(tiny_models / "bi-encoder", target_is_directory=True)
    return copy


def cross(models: Path, name: str) -> Path:
    return models / "cross-encoder" / name


def set_version(models: Path, version: str) -> None:
    meta = json.loads(cross(models, "model.json").read_text())
    meta["version"] = version
    cross(models, "model.json").write_text(json.dumps(meta))


def corrupt_onnx(models: Path) -> None:
    cross(models, "model.int8.onnx").write_bytes(b"\x08\x07not an onnx model" * 100)


def wrong_template(models: Path) -> None:
    meta = json.loads(cross(models, "model.json").read_text())
    meta["template_version"] = "t0"
    cross(models, "model.json").write_text(json.dumps(meta))


def no_tokenizer(models: Path) -> None:
    cross(models, "tokenizer.json").unlink()


def broken_tokenizer(models: Path) -> None:
    cross(models, "tokenizer.json").write_text("{ not json")


def wrong_outputs(models: Path) -> None:
    # A sound ONNX file of the wrong kind: the bi-encoder returns 384 floats per pair, not one logit.
    shutil.copy(models / "bi-encoder" / "model.int8.onnx", cross(models, "model.int8.onnx"))


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "corrupt onnx": (corrupt_onnx, "onnxruntime cannot load"),
    "wrong template version": (wrong_template, "template t0"),
    "missing tokenizer": (no_tokenizer, "tokenizer.json"),
    "unreadable tokenizer": (broken_tokenizer, "not a readable tokenizer"),
    "wrong outputs": (wrong_outputs, "one finite logit per pair"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_an_unsound_model_is_refused_and_the_old_one_keeps_serving(breakage: str, models: Path, tmp_path: Path) -> None:
    damage, reason = BREAKAGES[breakage]
    with running(settings_with(models, tmp_path)) as (sidecar, stub):
        before = stub.Rerank(request(8), timeout=30)
        originals = {p.name: p.read_bytes() for p in (models / "cross-encoder").iterdir()}
        damage(models)
        result = sidecar.reload()
        assert not result.loaded
        assert reason in result.error
        assert result.version == before.model_version
        after = stub.Rerank(request(8), timeout=30)
        assert after.model_version == before.model_version
        assert [r.relevance_score for r in after.results] == [r.relevance_score for r in before.results]
        for name, data in originals.items():  # repaired and renamed: now it loads
            cross(models, name).write_bytes(data)
        set_version(models, "tiny-ce-repaired")
        assert sidecar.reload().loaded
        assert stub.Rerank(request(8), timeout=30).model_version == "tiny-ce-repaired:int8"


def test_requests_in_flight_finish_on_the_model_they_started_with(models: Path, tmp_path: Path) -> None:
    settings = settings_with(models, tmp_path, batch_token_budget=512)
    with running(settings, slowed_loader(0.1)) as (sidecar, stub):
        old = stub.Rerank(request(4), timeout=30).model_version
        replies: list[pb.RerankResponse] = []
        callers = [
            threading.Thread(target=lambda: replies.append(stub.Rerank(request(40), timeout=30))) for _ in range(2)
        ]
        for caller in callers:
            caller.start()
        time.sleep(0.2)
        set_version(models, "tiny-ce-v2")
        old_service = sidecar.slot.get()
        assert sidecar.reload().loaded
        for caller in callers:
            caller.join(30)
        assert [r.model_version for r in replies] == [old, old]
        assert stub.Rerank(request(4), timeout=30).model_version == "tiny-ce-v2:int8"
        assert not old_service.scorer.batcher._thread.is_alive()  # type: ignore[attr-defined]  # closed once idle


def test_admin_http_reload(models: Path, tmp_path: Path) -> None:
    with running(settings_with(models, tmp_path)) as (sidecar, stub):
        ops = OpsEndpoint("127.0.0.1:0", sidecar.reload)
        url = f"http://127.0.0.1:{ops.port}/-/reload"
        sound = cross(models, "model.int8.onnx").read_bytes()
        try:
            corrupt_onnx(models)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30)
            assert refused.value.code == 409
            assert "onnxruntime cannot load" in json.loads(refused.value.read())["error"]
            assert stub.Rerank(request(3), timeout=30).reranked
            cross(models, "model.int8.onnx").write_bytes(sound)
            set_version(models, "tiny-ce-admin")
            with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as reply:
                assert reply.status == 200
                assert json.loads(reply.read())["version"] == "tiny-ce-admin:int8"
        finally:
            ops.close()
        assert stub.Rerank(request(3), timeout=30).model_version == "tiny-ce-admin:int8"


def test_sidecar_process_reloads_on_sighup_drains_on_sigterm_and_logs_json_without_secrets(
    models: Path, tmp_path: Path
) -> None:
    settings = settings_with(models, tmp_path)
    # The password is put into the child's environment on purpose (a spawned sidecar is not given
    # it): whatever a sidecar's environment holds, it must not reach its logs.
    env = {"SHOPRANK_OPENSEARCH_PASSWORD": "hunter2-not-for-logs", "PYTHONUNBUFFERED": "1"}
    configured = settings.model_copy(
        update={"log_format": "json", "metrics_listen": "127.0.0.1:0", "drain_seconds": 10}
    )
    sidecar = SidecarProcess(
        configured, listen="127.0.0.1:0", options=["-v"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    process = sidecar.process
    logs: list[str] = []
    log_reader = threading.Thread(target=lambda: logs.extend(process.stderr or []), daemon=True)
    log_reader.start()
    try:
        address = sidecar.address
        assert sidecar.ready is not None
        assert sidecar.ready.metrics_port  # the metrics endpoint is up too
        channel = grpc.insecure_channel(address)
        stub = pb_grpc.RerankerStub(channel)
        deadline = time.monotonic() + 60
        while True:
            try:
                version = stub.Rerank(request(5), timeout=10).model_version
                break
            except grpc.RpcError:
                assert time.monotonic() < deadline
                time.sleep(0.2)

        sound = cross(models, "model.int8.onnx").read_bytes()
        corrupt_onnx(models)
        process.send_signal(signal.SIGHUP)
        wait_for = time.monotonic() + 30
        while not any("reload refused" in line for line in logs):
            assert time.monotonic() < wait_for, logs[-5:]
            time.sleep(0.1)
        assert stub.Rerank(request(5), timeout=10).model_version == version

        cross(models, "model.int8.onnx").write_bytes(sound)
        set_version(models, "tiny-ce-sighup")
        process.send_signal(signal.SIGHUP)
        wait_for = time.monotonic() + 30
        while stub.Rerank(request(5), timeout=10).model_version != "tiny-ce-sighup:int8":
            assert time.monotonic() < wait_for
            time.sleep(0.1)

        statuses: list[grpc.StatusCode] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    stub.Rerank(request(300), timeout=20)
                    statuses.append(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    statuses.append(error.code())

        callers = [threading.Thread(target=load) for _ in range(4)]
        for caller in callers:
            caller.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        stop.set()
        for caller in callers:
            caller.join(30)
        channel.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    log_reader.join(10)
    assert grpc.StatusCode.OK in statuses
    # What the sidecar handled, it finished: nothing was cut off by the drain's grace period.
    drained = [line for line in logs if "in-flight requests in" in line]
    assert drained, logs[-5:]
    assert "; 0 cut off" in drained[-1], drained
    # Calls that reach the transport while it stops end UNAVAILABLE, or CANCELLED when gRPC's core
    # drops a call the application never received (reproduced with a bare grpc.server); both fail open.
    assert set(statuses) <= {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, set(statuses)
    assert logs, "the sidecar logged nothing"
    entries = [json.loads(line) for line in logs if line.strip()]  # every line is one JSON object
    assert {"ts", "level", "logger", "message"} <= set(entries[0])
    assert any("model reloaded" in e["message"] for e in entries), [e["message"] for e in entries]
    assert not any("hunter2" in line for line in logs)
