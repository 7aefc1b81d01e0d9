"""The gateway's settings: which PBX, how to reach its ARI, and the bounds of its buffers."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr

from callstream_common.settings import ServiceSettings


DEFAULT_FILTERED_TYPES = ("ChannelVarset", "DeviceStateChanged", "BridgeCreated", "BridgeDestroyed",
                          "ChannelCreated", "ChannelDialplan", "ChannelConnectedLine")


class GatewaySettings(ServiceSettings):
    service: str = "ari-gateway"
    pbx_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$",
                        description="The PBX this gateway serves: the key of everything it publishes.")
    ari_url: AnyHttpUrl = Field(default=AnyHttpUrl("http://127.0.0.1:8088/ari"),
                                description="ARI base URL (http or https); the WebSocket URL is derived from it.")
    ari_user: str = "asterisk"
    ari_password: SecretStr = SecretStr("asterisk")
    ari_app: str = Field(default="callstream", min_length=1, description="Stasis application(s), comma-separated.")
    ari_subscribe_all: bool = Field(default=True, description="Endpoint and device state events need it.")
    # Types nothing in callstream reads, dropped at the source (docs/gateway.md). ChannelVarset is a third to a
    # half of all events (every Set(), every bridge change, RTP QoS at hangup); DeviceStateChanged repeats what
    # EndpointStateChange says of a phone; BridgeCreated/BridgeDestroyed answer bridges callstream itself creates
    # and destroys (their outcome is on ari.command-results); ChannelCreated and ChannelDialplan precede the
    # StasisStart that opens a call for callstream (it carries the channel's creation time and dialplan
    # position); ChannelConnectedLine repeats who a bridged leg talks to. The last five are 29% of what the first two
    # left of a routed call's events in the simulator (7.6 of 26.5 per call, docs/acd.md session 5).
    ari_filtered_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_FILTERED_TYPES),
        description="Event types dropped at the source with ARI's eventFilter; [] keeps every event.",
    )
    ari_request_timeout_s: float = Field(default=5.0, gt=0, le=60)
    reconnect_min_s: float = Field(default=0.2, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)
    buffer_events: int = Field(default=200_000, ge=100, description="Events held in memory before spooling.")
    spool_dir: Path = Field(default=Path(".stack/gateway"), description="On-disk spool and sequence state.")
    kafka_max_in_flight: int = Field(default=20_000, ge=1, description="Unacknowledged records to Kafka.")
    # How long aiokafka keeps retrying a batch while Kafka is away, before failing it. Longer outages are
    # absorbed by the memory buffer and the spool; see outbox.py.
    kafka_delivery_timeout_s: float = Field(default=300.0, ge=5)
    command_concurrency: int = Field(default=64, ge=1, le=1000)
    command_dedup_window_s: float = Field(default=3600.0, ge=60,
                                          description="How far back executed command ids are remembered.")
    http_port: int = Field(default=0, ge=0, le=65535, description="/healthz, /ready, /metrics; 0 = none.")
    http_host: str = "127.0.0.1"
    drain_timeout_s: float = Field(default=20.0, gt=0, description="SIGTERM: how long to drain to Kafka.")
