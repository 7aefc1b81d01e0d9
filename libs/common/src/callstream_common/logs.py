"""JSON logs, one object per line on stderr, with the service and instance on every record.

Secrets never reach a log line: settings hold them as SecretStr (printed as '**********'), and
`redact_url` strips credentials from URLs that are logged (ARI and database addresses).
"""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit, urlunsplit

from pythonjsonlogger.json import JsonFormatter


def setup_logging(service: str, instance: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{name}{message}",
            style="{",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service, "instance": instance},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka logs every reconnect attempt at ERROR while a broker is down; our own code reports outages.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))


def redact_url(url: str) -> str:
    """The URL without user and password, for logging where a service connects."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
