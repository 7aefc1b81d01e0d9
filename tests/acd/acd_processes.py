"""Starting and stopping the ACD's workers (router, agent-state) as processes, for the tests in tests/acd."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from callstream_common.settings import ServiceSettings
from conftest import ROOT


def start_service(module: str, settings: ServiceSettings, dsn: str, log_path: Path,
                  datadir: Path, *, extra_env: Mapping[str, str] | None = None,
                  python_options: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """`extra_env` adds or overrides CALLSTREAM_* settings (bench-routing: the metrics port);
    `python_options` go before `-m module` (bench-routing's `--profile`: `-m cProfile -o FILE`)."""
    env = {**os.environ, "CALLSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
           "CALLSTREAM_TOPIC_PREFIX": settings.topic_prefix, "CALLSTREAM_TENANT": settings.tenant,
           "CALLSTREAM_PBX_PARTITIONS": str(settings.pbx_partitions),
           "CALLSTREAM_TENANT_PARTITIONS": str(settings.tenant_partitions),
           "CALLSTREAM_PG_DSN": dsn, "CALLSTREAM_REDIS_URL": settings.redis_url.get_secret_value(),
           "CALLSTREAM_DATADIR": str(datadir), "CALLSTREAM_TICK_INTERVAL_S": "0.2",
           **(extra_env or {})}
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, *python_options, "-m", module], env=env, cwd=str(ROOT),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
