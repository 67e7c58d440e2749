"""First-stage engines: the same retrieval and versioned-index semantics on LanceDB and OpenSearch."""
