"""The wallboard web server of the stats service: board pages, a JSON API and SSE streams fed from Redis.

It only reads what the aggregator stores and publishes (callstream_stats.board is the contract); see
docs/wallboard.md.
"""
