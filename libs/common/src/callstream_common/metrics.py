"""Every Prometheus metric callstream exports, declared once, here.

Labels are bounded sets (topic, service, operation, reason class): never a call, agent or message id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets in seconds, from 0.5 ms (a Redis round trip) to 10 s (a stuck ARI request).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

MESSAGES_CONSUMED = Counter(
    "callstream_messages_consumed_total", "Records read from Kafka, by topic and message type.",
    ["service", "topic", "type"],
)
MESSAGES_PASSED_OVER = Counter(
    "callstream_messages_passed_over_total",
    "Raw ARI events not decoded because their ari_type header names a type the service ignores.",
    ["service", "topic"],
)
HANDLER_DELAY = Histogram(
    "callstream_handler_delay_seconds",
    "From a record's timestamp (its producer's clock) to the start of its handler: the time spent in Kafka and "
    "queued in the worker, as opposed to callstream_handler_seconds, the handler's own time.",
    ["service", "topic"], buckets=LATENCY_BUCKETS,
)
FETCH_DELAY = Histogram(
    "callstream_fetch_delay_seconds",
    "From a record's timestamp to its return by the fetch in faust's consumer thread (before the hand-over to "
    "the worker's event loop): the Kafka and fetch part of callstream_handler_delay_seconds.",
    ["service", "topic"], buckets=LATENCY_BUCKETS,
)
HANDLER_LATENCY = Histogram(
    "callstream_handler_seconds", "Time to handle one decoded message, effects included.",
    ["service", "topic"], buckets=LATENCY_BUCKETS,
)
MESSAGES_PRODUCED = Counter(
    "callstream_messages_produced_total", "Records acknowledged by Kafka, by topic.", ["service", "topic"],
)
PRODUCE_LATENCY = Histogram(
    "callstream_produce_seconds", "From send to Kafka's acknowledgement (acks=all).",
    ["service", "topic"], buckets=LATENCY_BUCKETS,
)
DEAD_LETTERS = Counter(
    "callstream_dead_letters_total", "Records sent to a dead-letter topic, by source topic and reason class.",
    ["service", "topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "callstream_consumer_lag", "Records between the last committed offset and the end of the partition.",
    ["service", "topic", "partition"],
)
IN_FLIGHT = Gauge(
    "callstream_in_flight", "Inputs read but not yet handled and committed (bounded by max_in_flight).",
    ["service"],
)
ARI_RECONNECTS = Counter(
    "callstream_ari_reconnects_total", "WebSocket reconnections of a gateway to its PBX.", ["service", "pbx_id"],
)
MIGRATIONS_APPLIED = Counter(
    "callstream_sql_migrations_applied_total", "SQL migrations applied by this process.", ["service"],
)

# --- ari-gateway ----------------------------------------------------------------------------------------
GATEWAY_EVENTS_IN = Counter(
    "callstream_gateway_events_received_total", "WebSocket frames read from the PBX, by ARI event type.",
    ["pbx_id", "type"],
)
GATEWAY_EVENTS_PUBLISHED = Counter(
    "callstream_gateway_events_published_total", "Records acknowledged by Kafka (events, markers, snapshots).",
    ["pbx_id"],
)
GATEWAY_BUFFER_DEPTH = Gauge(
    "callstream_gateway_buffer_depth", "Events waiting in memory for Kafka.", ["pbx_id"],
)
GATEWAY_SPOOL_DEPTH = Gauge(
    "callstream_gateway_spool_depth", "Events waiting in the on-disk spool for Kafka.", ["pbx_id"],
)
GATEWAY_CONNECTED = Gauge(
    "callstream_gateway_pbx_connected", "1 while the ARI WebSocket is open.", ["pbx_id"],
)
GATEWAY_COMMAND_LATENCY = Histogram(
    "callstream_gateway_command_seconds", "ARI REST time of a command, by operation.",
    ["pbx_id", "op"], buckets=LATENCY_BUCKETS,
)
GATEWAY_COMMANDS = Counter(
    "callstream_gateway_commands_total",
    "Commands by operation and outcome (ok, error, expired, rejected, repeated).",
    ["pbx_id", "op", "outcome"],
)

# --- agent-state ----------------------------------------------------------------------------------------
AGENT_STATE_INPUTS = Counter(
    "callstream_agent_state_inputs_total",
    "Machine inputs fed to an agent, by input type and outcome (applied, quiet, rejected, unknown_agent).",
    ["input", "outcome"],
)
AGENT_STATE_REJECTIONS = Counter(
    "callstream_agent_state_rejections_total",
    "Inputs the machine refused (late, repeated, out of order), by input type and reason; never an error.",
    ["input", "reason"],
)
AGENT_STATE_TRANSITIONS = Counter(
    "callstream_agent_state_transitions_total", "agent.state-changed events, by previous and new state.",
    ["from_state", "to_state"],
)
AGENT_STATE_REDIS_CONFLICTS = Counter(
    "callstream_agent_state_redis_conflicts_total",
    "State changes Redis refused for another reason than a router reservation (the store disagrees).",
    ["to_state"],
)

# --- router -----------------------------------------------------------------------------------------------
ROUTER_INPUTS = Counter(
    "callstream_router_inputs_total", "Inputs fed to the router's decider, by input type.", ["input"],
)
STREAM_GAPS_HEALED = Counter(
    "callstream_stream_gaps_healed_total",
    "Partitions a stream processor sought back: records skipped by a fetch, or one after the commit point never"
    " processed.",
    ["service", "topic"],
)
AGENT_STATE_REDIS_REPAIRED = Counter(
    "callstream_agent_state_redis_repaired_total",
    "Agents whose Redis availability a worker repaired from its own state at start (logged in or not).",
    ["to_state"],
)
AGENT_STATE_SWEPT = Counter(
    "callstream_agent_state_swept_total",
    "Agents the sweeper released: ringing or on a call past max_busy_s (the call's end was lost).",
)
ROUTER_TICKS_HELD = Counter(
    "callstream_router_ticks_held_total",
    "Ticks not sent because the worker was behind on that partition's ari.events (its deadlines wait).",
)
ROUTER_NOTES = Counter(
    "callstream_router_notes_total",
    "Inputs the decider ignored or could not act on (late, repeated, unknown), by kind; never an error.",
    ["kind"],
)
ROUTER_RESERVATIONS = Counter(
    "callstream_router_reservations_total",
    "Reservations asked of Redis, by kind (queue, ring_all, agent) and outcome (taken, none).",
    ["kind", "outcome"],
)
ROUTER_CALL_EVENTS = Counter(
    "callstream_router_call_events_total", "Call events the router produced, by type.", ["type"],
)
ROUTER_DECIDE_LATENCY = Histogram(
    "callstream_router_decide_seconds",
    "One input's processing: decide, Redis intents and fed-back answers, produce (not the table write).",
    buckets=LATENCY_BUCKETS,
)

# --- stats aggregator ----------------------------------------------------------------------------------
STATS_EVENTS_FOLDED = Counter(
    "callstream_stats_events_folded_total", "Events folded into the board state, by message type.", ["type"],
)
STATS_CAUGHT_UP = Gauge(
    "callstream_stats_caught_up", "1 once the start-up replay reached the topics' ends (boards are published).",
)
STATS_REPLAY_SECONDS = Gauge(
    "callstream_stats_replay_seconds", "How long the last start-up replay took (state rebuilt from the topics).",
)
STATS_SNAPSHOTS_PUBLISHED = Counter(
    "callstream_stats_snapshots_published_total", "Board snapshots written to Redis and published.",
)
STATS_PUBLISH_SECONDS = Histogram(
    "callstream_stats_publish_seconds", "One publish round: building the changed boards and writing them.",
    buckets=LATENCY_BUCKETS,
)
STATS_EVENT_TO_PUBLISH = Histogram(
    "callstream_stats_event_to_publish_seconds",
    "From a board's newest event (its PBX time) to the publication of the snapshot that holds it.",
    buckets=LATENCY_BUCKETS,
)
STATS_INTERVAL_ROWS = Counter(
    "callstream_stats_interval_rows_total", "15-minute interval rows upserted into SQL.",
)

# --- stats web (wallboards) -----------------------------------------------------------------------------
STATS_WEB_STREAMS = Gauge(
    "callstream_stats_web_streams", "Open board streams (SSE clients) on this instance.",
)
STATS_WEB_SUBSCRIBED = Gauge(
    "callstream_stats_web_subscribed", "1 while this instance's Redis subscription to board updates is live.",
)
STATS_WEB_PUBLICATIONS = Counter(
    "callstream_stats_web_publications_total",
    "Board snapshots received on the subscription, by outcome (relayed, no_streams, invalid).", ["outcome"],
)
STATS_WEB_SUPERSEDED = Counter(
    "callstream_stats_web_superseded_total",
    "Snapshots replaced in a slow client's buffer by a newer one before it took them (not an error).",
)
STATS_WEB_EVENTS_SENT = Counter(
    "callstream_stats_web_events_sent_total", "Events written to streams, by event (snapshot, heartbeat).",
    ["event"],
)
STATS_WEB_STREAMS_CLOSED = Counter(
    "callstream_stats_web_streams_closed_total",
    "Streams ended, by reason (client_gone, write_timeout, shutdown).", ["reason"],
)
STATS_WEB_DELIVERY_LATENCY = Histogram(
    "callstream_stats_web_delivery_seconds",
    "From a snapshot's arrival on this instance to its write to one client (buffer wait and socket write).",
    buckets=LATENCY_BUCKETS,
)
