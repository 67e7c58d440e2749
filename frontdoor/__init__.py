"""The search front door: first stage → sidecar rerank (deadline, fail-open) → page, over CLI and HTTP."""
