"""The rerank sidecar: gRPC Reranker that rescores first-stage hits with a cross-encoder and diversifies."""
