"""The figures: folding `calls` and `agents` into per-board state (fold), and a board's snapshot at a given
time (compute). Pure: no I/O, no clock; the aggregator service (callstream_stats.aggregate) drives them."""
