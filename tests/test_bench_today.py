"""`bench rerank` runs today's configuration beside the new default only when the two differ."""

from __future__ import annotations

from pathlib import Path

from benchmarks.rerank import TODAY, todays_configuration
from shoprank.model_meta import CROSS_ENCODER, ModelMetadata, write_metadata
from shoprank.settings import Settings


def _data_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    directory = tmp_path / "models" / CROSS_ENCODER
    directory.mkdir(parents=True)
    (directory / "tokenizer.json").write_text("{}")
    meta = ModelMetadata(kind="cross-encoder", version="v", source="s", fine_tuned=True, max_length=128, files=files)
    write_metadata(directory, meta)
    return tmp_path


def test_static_int8_is_benched_beside_dynamic_int8(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, {"fp32": "a", "int8": "b", "int8-static": "c"})
    today = todays_configuration(Settings(data_dir=data, device="cpu", cross_encoder_precision="int8-static"))
    assert today is not None
    assert today.cross_encoder_precision == TODAY["cross_encoder_precision"] == "int8"
    assert today.cascade_top_k == 0


def test_a_cascade_is_benched_beside_the_full_model(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, {"fp32": "a", "int8": "b"})
    today = todays_configuration(Settings(data_dir=data, device="cpu", cascade_top_k=30))
    assert today is not None
    assert today.cascade_top_k == 0


def test_todays_configuration_is_not_run_twice(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, {"fp32": "a", "int8": "b"})
    assert todays_configuration(Settings(data_dir=data, device="cpu")) is None
    assert todays_configuration(Settings(data_dir=data, device="cpu", cross_encoder_precision="int8")) is None
