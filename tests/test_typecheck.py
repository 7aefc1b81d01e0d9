"""libs/common, the admin CLI and the services stay mypy-strict (configuration in pyproject.toml)."""

from __future__ import annotations

from mypy import api

from conftest import ROOT

STRICT_PATHS = ["libs/common/src", "tools/admin/src", "services/ari-gateway/src", "services/router/src",
                "services/agent-state/src", "services/stats/src"]


def test_strict_type_check_passes() -> None:
    stdout, stderr, status = api.run([*(str(ROOT / p) for p in STRICT_PATHS), "--config-file",
                                      str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".cache/mypy")])
    assert status == 0, stdout + stderr
