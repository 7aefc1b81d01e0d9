"""callstream's shared library: imported by every service, never run on its own.

What lives here is what two services must agree on: the envelope and the message models (the contract of
every topic), the topic catalogue and partitioning, and the plumbing that every service wires the same way
(Kafka producers and consumers, the faust app factory, SQL migrations, Redis keys, settings, logs, metrics).
"""
