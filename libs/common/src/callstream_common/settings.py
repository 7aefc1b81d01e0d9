"""Typed settings: defaults in code, then a YAML file, then the environment, then the command line.

Each service subclasses ServiceSettings and loads it once in its entry point with `load_settings`; nothing
deeper reads the environment. Environment variables are `CALLSTREAM_<FIELD>`; command-line flags are
`--<field>` (underscores or dashes); the file is `--config FILE` or `CALLSTREAM_CONFIG`.
An invalid value fails start-up with a SettingsError naming the field and the problem.
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, CliSettingsSource, SettingsConfigDict

from callstream_common.topics import DEFAULT_PBX_PARTITIONS, DEFAULT_TENANT_PARTITIONS

ENV_PREFIX = "CALLSTREAM_"
# A faust worker's Kafka session: its partitions move to a live worker once the group coordinator has not heard
# from it for this long. 6 s is the broker's minimum (group.min.session.timeout.ms): a killed router or
# agent-state worker is replaced within seconds (issue 5: resumes within 10 s). faust's own default is 60 s.
SESSION_TIMEOUT_S = 6.0
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class SettingsError(ValueError):
    """Start-up configuration is invalid; the message names each field and its problem."""


class ServiceSettings(BaseSettings):
    """What every service needs; services add their own fields in a subclass."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    service: str = Field(default="callstream", description="Service name, used in producer ids and logs.")
    instance: str = Field(default_factory=_default_instance, description="This process, among replicas.")
    tenant: str = Field(default="default", min_length=1, max_length=64)
    topic_prefix: str = Field(
        default="", pattern=r"^[A-Za-z0-9._-]*$", description="Prefix of every topic name (tenant or test)."
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", min_length=1)
    pbx_partitions: int = Field(default=DEFAULT_PBX_PARTITIONS, ge=1, le=1000)
    tenant_partitions: int = Field(default=DEFAULT_TENANT_PARTITIONS, ge=1, le=1000)
    pg_dsn: SecretStr = Field(
        default=SecretStr("postgresql://callstream:callstream@127.0.0.1:15432/callstream"),
        description="Business database; a secret so that it never appears in logs or reprs.",
    )
    pbx_pg_dsn: SecretStr = Field(
        default=SecretStr("postgresql://callstream:callstream@127.0.0.1:15432/callstream_pbx"),
        description="PBX database (PJSIP realtime, read by every Asterisk node): a separate database, in "
        "production its own cluster, usually behind pgbouncer.",
    )
    pg_pool_max: int = Field(default=10, ge=1, le=200)
    # pgbouncer in transaction mode cannot hold prepared statements across transactions (1.18 and older).
    pg_statement_cache_size: int = Field(default=100, ge=0)
    redis_url: SecretStr = Field(default=SecretStr("redis://127.0.0.1:16379/0"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0: no separate metrics endpoint.")
    max_in_flight: int = Field(default=1000, ge=1, le=100_000, description="Bound on unfinished inputs.")

    @property
    def producer_id(self) -> str:
        return f"{self.service}/{self.instance}"


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], argv: Sequence[str] | None = None, **overrides: Any) -> S:
    """Build the settings from file, environment and `argv`; `overrides` (for tests) win over all."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=os.environ.get(CONFIG_ENV))
    known, rest = pre.parse_known_args(list(argv or []))
    from_file = _read_file(known.config) if known.config else {}
    unknown_file_keys = sorted(set(from_file) - set(cls.model_fields))
    if unknown_file_keys:
        raise SettingsError(f"{known.config}: unknown setting(s): {', '.join(unknown_file_keys)}")
    try:
        cli: CliSettingsSource[Any] = CliSettingsSource(
            cls, cli_parse_args=rest, cli_prog_name=cls.__name__, cli_implicit_flags=True, cli_kebab_case=True
        )
        from_cli = cli()
    except SystemExit as exc:  # argparse reports to stderr and exits on an unknown or malformed flag
        if exc.code == 0:
            raise  # --help was printed: exit as asked
        raise SettingsError(f"invalid command line: {' '.join(rest)}") from exc
    # The environment beats the file: read it explicitly so the order is plain to see here.
    from_env = {
        name: os.environ[f"{ENV_PREFIX}{name.upper()}"]
        for name in cls.model_fields
        if f"{ENV_PREFIX}{name.upper()}" in os.environ
    }
    values = {**from_file, **from_env, **from_cli, **overrides}
    try:
        return cls.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(settings)'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid {cls.__name__}: {problems}") from exc


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path}: expected a mapping of setting names to values")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
