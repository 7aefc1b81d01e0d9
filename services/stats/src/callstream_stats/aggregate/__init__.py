"""The stats aggregator: `python -m callstream_stats.aggregate`. Folds `calls` and `agents` into board state
(callstream_stats.figures), publishes board snapshots to Redis and writes 15-minute interval rows to SQL."""
