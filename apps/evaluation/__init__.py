"""Evaluation: metrics, the outside evaluators (classifiers, ASR, speaker and identity embeddings nobody here
trained), per-generator quality reports and ``affectstudio bench``."""
