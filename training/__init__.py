"""Training and export: fine-tune the cross-encoder and export ONNX models (needs the `train` extra)."""
