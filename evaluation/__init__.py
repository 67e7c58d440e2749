"""Evaluation: run every search stage over judged queries and report NDCG, MRR, recall and diversity."""
