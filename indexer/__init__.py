"""Catalogue indexing: read, validate (dead-letter bad rows), embed, write a new version, swap."""
