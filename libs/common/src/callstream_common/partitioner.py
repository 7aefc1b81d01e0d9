"""Which partition a key lands on: Kafka's default partitioner for keyed records.

Kafka's Java client (and librdkafka's "murmur2_random") place a keyed record on
`toPositive(murmur2(key)) % partitions`. aiokafka and faust use the same hash, which we take from aiokafka
rather than writing it again; this module is the one place the rule is spelled, so that a service can ask
"which partition holds pbx-07?" (the gateway reads only that partition of ari.commands) and get the answer
the broker's producers agree with (tests/test_partitioner.py checks it against Kafka's own Java producer).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2


def key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def partition_for(key: str | bytes, partitions: int) -> int:
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    hashed: int = murmur2(key_bytes(key))
    return (hashed & 0x7FFFFFFF) % partitions
