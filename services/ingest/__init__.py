"""The click-log ingestion job: the single writer of learned state (memory counts, bandit, ranker rows),
ranker retraining, and publishing new model versions."""
