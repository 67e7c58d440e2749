"""Judged relevance, below both training and evaluation: ESCI judgments, their query split, ranking metrics."""
