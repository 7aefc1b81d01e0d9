"""Message models of every topic. Importing this package registers every message type in CONTRACT."""

from callstream_common.messages import agents, ari, calls, cms, commands, dialer
from callstream_common.messages.base import CONTRACT, Body, MessageRegistry

__all__ = ["CONTRACT", "Body", "MessageRegistry", "agents", "ari", "calls", "cms", "commands", "dialer"]
