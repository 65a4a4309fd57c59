"""Scoring: re-ID retrieval (datasets, CMC/mAP, re-ranking, pictures) and multi-camera tracking
(MTMC IDF1 against MOTChallenge ground truth, scene runs compared method by method)."""
