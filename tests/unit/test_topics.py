"""The topic catalogue against DESIGN.md's contract, and the topic plan."""

from __future__ import annotations

import re
from pathlib import Path

from callstream_common.kafka.admin import plan_topics
from callstream_common.messages import CONTRACT
from callstream_common.partitioner import partition_for
from callstream_common.redis_store import key
from callstream_common.topics import CATALOGUE, TopicName, dlq_name, topic_name

DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"


def design_topics() -> dict[str, str]:
    """Topic name -> key, from the table under '## Topics' in DESIGN.md."""
    text = DESIGN.read_text()
    table = text[text.index("## Topics"):].split("\n## ")[0]
    rows = re.findall(r"^\| ([a-z][a-z.-]+) \| ([^|]+) \|", table, flags=re.M)
    return {name: key_.strip() for name, key_ in rows if name != "topic"}


def test_catalogue_is_the_design_contract() -> None:
    expected = design_topics()
    assert expected, "could not read the topic table of DESIGN.md"
    assert {str(entry.name): str(entry.key) for entry in CATALOGUE} == expected


def test_every_topic_has_message_types_and_every_type_a_catalogued_topic() -> None:
    topics_with_types = {model.TOPIC for model in CONTRACT.models()}
    assert topics_with_types | {TopicName.ARI_EVENTS} == {entry.name for entry in CATALOGUE}


def test_pbx_scoped_topics_are_co_partitioned() -> None:
    planned = {p.name: p.partitions for p in plan_topics("acme", pbx_partitions=24, tenant_partitions=4)}
    pbx_scoped = [topic_name(e.name, "acme") for e in CATALOGUE if e.pbx_scoped]
    assert {planned[name] for name in pbx_scoped} == {24}
    assert all(planned[dlq_name(name)] == planned[name] for name in pbx_scoped)
    assert planned["acme.dialer.events"] == 4
    assert len(planned) == 2 * len(CATALOGUE)


def test_names() -> None:
    assert topic_name(TopicName.CALLS) == "calls"
    assert topic_name(TopicName.ARI_EVENTS, "acme") == "acme.ari.events"
    assert dlq_name("acme.ari.events") == "acme.ari.events.dlq"
    assert key("acme", "agent", "a1") == "cs:acme:agent:a1"


def test_partitioner_matches_kafka_reference_values() -> None:
    # murmur2 hashes from Kafka's own unit test of Utils.murmur2; a modulus of 2**31 leaves the positive
    # hash whole, so partition_for must return toPositive(hash) exactly.
    assert partition_for(b"21", 2**31) == (-973932308 & 0x7FFFFFFF)
    assert partition_for(b"foobar", 2**31) == (-790332482 & 0x7FFFFFFF)
    assert partition_for(b"a-little-bit-long-string", 2**31) == (-985981536 & 0x7FFFFFFF)
    assert partition_for(b"a-little-bit-longer-string", 2**31) == (-1486304829 & 0x7FFFFFFF)
    assert partition_for(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", 2**31) == (-58897971 & 0x7FFFFFFF)
    assert partition_for(b"abc", 2**31) == (479470107 & 0x7FFFFFFF)
