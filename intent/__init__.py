"""Query intent: P(category | query) over the catalogue's own taxonomy, from the stored product vectors."""
