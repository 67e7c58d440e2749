"""Built-model metadata (`model.json`) and the layout of the models directory.

Every ONNX model shoprank serves sits in its own directory with `tokenizer.json` and a
`model.json` written by `shoprank models build`; loaders refuse a directory without them
and say how to make one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from shoprank.errors import NotSetUpError
from shoprank.template import TEMPLATE_VERSION

BI_ENCODER = "bi-encoder"
CROSS_ENCODER = "cross-encoder"
# The cascade's cheap first scorer: a layer-truncated copy of the cross-encoder (its own directory).
CASCADE_SCORER = "cross-encoder-cheap"
METADATA_FILE = "model.json"
TOKENIZER_FILE = "tokenizer.json"
# A fine-tuned cross-encoder's training record (config, split, dev figures, the queries it was
# trained on) travels with its weights and its built model; the eval reads it to hold those out.
TRAINING_RECORD_FILE = "training.json"

Precision = Literal["fp32", "fp16", "int8", "int8-static"]


class ModelNotBuiltError(NotSetUpError):
    """A model directory is missing or incomplete."""


class ModelMetadata(BaseModel):
    """What a built model is, how it was made and how it must be fed."""

    kind: Literal["bi-encoder", "cross-encoder"]
    version: str = Field(description="stable id: name + weights digest")
    source: str = Field(description="where the weights came from")
    fine_tuned: bool = Field(description="False for a cross-encoder initialised from the base weights only")
    template_version: str = TEMPLATE_VERSION
    max_length: int
    dim: int | None = Field(None, description="embedding size (bi-encoder)")
    files: dict[str, str] = Field(description="precision -> ONNX file name in the model directory")
    parity: dict[str, float] = Field(default_factory=dict, description="max |onnx - torch| per precision")
    notes: str = ""

    def onnx_path(self, model_dir: Path, precision: Precision) -> Path:
        """Path of this model's ONNX file at a precision, with the available ones in the error."""
        if precision not in self.files:
            raise ModelNotBuiltError(
                f"{model_dir} has no {precision} model (has: {', '.join(sorted(self.files))}); "
                "run `shoprank models build`"
            )
        return model_dir / self.files[precision]


def model_dir(models_dir: Path, kind: str) -> Path:
    """Directory of one kind of model under the models directory."""
    return models_dir / kind


def load_metadata(directory: Path) -> ModelMetadata:
    """Read and check a model directory; errors say what to run."""
    meta_path = directory / METADATA_FILE
    if not meta_path.is_file():
        raise ModelNotBuiltError(f"no model at {directory} (missing {METADATA_FILE}); run `shoprank models build`")
    if not (directory / TOKENIZER_FILE).is_file():
        raise ModelNotBuiltError(f"model dir {directory} has no {TOKENIZER_FILE}; run `shoprank models build`")
    meta = ModelMetadata.model_validate_json(meta_path.read_text())
    if meta.template_version != TEMPLATE_VERSION:
        raise ModelNotBuiltError(
            f"model at {directory} was built for text template {meta.template_version}, this shoprank uses "
            f"{TEMPLATE_VERSION}; rebuild it with `shoprank models build`"
        )
    return meta


def write_metadata(directory: Path, meta: ModelMetadata) -> None:
    """Write model.json (last, so a directory with metadata is complete)."""
    tmp = directory / (METADATA_FILE + ".tmp")
    tmp.write_text(meta.model_dump_json(indent=2))
    tmp.replace(directory / METADATA_FILE)
