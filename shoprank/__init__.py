"""shoprank: shop search with cross-encoder reranking and catalogue-aware diversity.

This package is the shared core used by the indexer, the sidecar, the front door and
training: the product schema, the product-to-text templates and the settings.
"""

__version__ = "0.1.0"
