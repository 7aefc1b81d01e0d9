"""compose.yaml and the Dockerfile, checked without a Docker engine (the build machines have none).

compose.yaml is validated against the Compose specification (check-jsonschema's vendored copy); the rest are
pure checks that what compose builds and runs exists in the workspace.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from callstream_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
# Consumers of a group, and the wallboard web side, scale with `docker compose up --scale NAME=N`. The stats
# aggregator does not (one per tenant: docs/metrics.md).
SCALABLE = ("router", "router-projector", "agent-state", "stats-web", "dialer")
SERVICE_ENV = ("CALLSTREAM_KAFKA_BOOTSTRAP", "CALLSTREAM_PG_DSN", "CALLSTREAM_REDIS_URL")

def _check_jsonschema(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), *args],
        input=stdin, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )


@cache
def _compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@cache
def _workspace_packages() -> dict[str, Path]:
    """Workspace member directories by package name, from the root pyproject's [tool.uv.workspace]."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for directory in sorted(ROOT.glob(pattern)):
            pyproject = directory / "pyproject.toml"
            if pyproject.is_file():
                members[tomllib.loads(pyproject.read_text())["project"]["name"]] = directory
    return members


def _built_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in _compose()["services"].items() if "build" in svc}


def _module_file(src: Path, module: str) -> Path | None:
    """Where `python -m module` finds the module under `src`, or None."""
    base = src.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _host_port(service: dict[str, Any], container_port: int) -> int:
    for entry in service.get("ports", []):
        *_, host, container = str(entry).split(":")
        if int(container) == container_port:
            return int(host)
    raise AssertionError(f"port {container_port} is not published")


def test_compose_file_follows_the_compose_spec() -> None:
    result = _check_jsonschema("--builtin-schema", "vendor.compose-spec", str(COMPOSE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_spec_check_rejects_an_invalid_file() -> None:
    # Guards the test above against passing vacuously (a schema that accepts anything, an argument ignored).
    invalid = "services:\n  router:\n    image: [not, a, string]\n    depends_on: {kafka: {condition: soon}}\n"
    result = _check_jsonschema(
        "--builtin-schema", "vendor.compose-spec", "--default-filetype", "yaml", "-", stdin=invalid
    )
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(_built_services()))
def test_built_service_names_a_workspace_package_and_its_module(name: str) -> None:
    service = _built_services()[name]
    build = service["build"]
    assert build["context"] == "."
    assert (ROOT / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    package = build["args"]["SERVICE"]
    members = _workspace_packages()
    assert package in members, f"{name}: SERVICE={package} is not a workspace package ({sorted(members)})"
    command = service["command"]
    assert command[:2] == ["python", "-m"], f"{name}: command should be python -m <module>"
    module = command[2]
    assert _module_file(members[package] / "src", module), f"{name}: no module {module} in {package}'s src/"


def test_every_service_package_has_a_compose_service() -> None:
    built = {svc["build"]["args"]["SERVICE"] for svc in _built_services().values()}
    services = {name for name, path in _workspace_packages().items() if path.parent == ROOT / "services"}
    assert services, "no workspace package under services/"
    assert services <= built, f"not in compose.yaml: {sorted(services - built)}"


def test_services_reach_the_stack_and_wait_for_it() -> None:
    services = _compose()["services"]
    for name, service in _built_services().items():
        environment = service["environment"]
        for variable in SERVICE_ENV:
            assert variable in environment, f"{name}: {variable} missing"
        assert urlsplit(f"//{environment['CALLSTREAM_KAFKA_BOOTSTRAP']}").hostname in services
        for variable in ("CALLSTREAM_PG_DSN", "CALLSTREAM_REDIS_URL"):
            assert urlsplit(environment[variable]).hostname in services, f"{name}: {variable}"
        depends = service["depends_on"]
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dependency, rule in depends.items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency == "topics" else "service_healthy"
            assert rule["condition"] == expected, f"{name} -> {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
        if name != "topics":
            assert "topics" in depends, f"{name} may start before its topics exist"


def test_scalable_consumers_have_no_fixed_name_or_host_port() -> None:
    services = _compose()["services"]
    for name in SCALABLE:
        assert "container_name" not in services[name], name
        for entry in services[name].get("ports", []):
            # Only a host port range lets each replica take its own port.
            *_, host, _container = str(entry).split(":")
            assert "-" in host, f"{name}: a fixed host port {entry!r} breaks --scale"


def test_stats_halves_run_separately_and_the_boards_are_published() -> None:
    from callstream_stats.__main__ import COMMANDS
    from callstream_stats.web.settings import StatsWebSettings

    services = _compose()["services"]
    aggregate, web = services["stats-aggregate"], services["stats-web"]
    assert aggregate["command"] == ["python", "-m", "callstream_stats", "aggregate"]
    assert "stats-aggregate" not in SCALABLE  # one per tenant
    command = web["command"]
    assert command[:4] == ["python", "-m", "callstream_stats", "web"]
    assert {aggregate["command"][3], command[3]} <= set(COMMANDS)
    # The flags are the web settings' own (load_settings would stop the container on an unknown one).
    flags = dict(zip(command[4::2], command[5::2], strict=True))
    assert {flag[2:].replace("-", "_") for flag in flags} <= set(StatsWebSettings.model_fields)
    assert flags["--host"] == "0.0.0.0", "the default (loopback) is unreachable from outside the container"
    port = int(flags["--port"])
    published = [str(entry).split(":") for entry in web["ports"]]
    assert [(ip, int(container)) for ip, _host, container in published] == [("127.0.0.1", port)]
    assert f"127.0.0.1:{port}/health" in " ".join(web["healthcheck"]["test"])


def test_host_ports_match_the_local_stack() -> None:
    # The local stack's addresses are the settings' defaults (read from the model, not the environment):
    # host tools and tests work against either.
    fields = ServiceSettings.model_fields
    services = _compose()["services"]
    kafka = urlsplit(f"//{fields['kafka_bootstrap'].default}")
    assert _host_port(services["kafka"], 19092) == kafka.port
    assert f"EXTERNAL://{kafka.hostname}:{kafka.port}" in services["kafka"]["environment"][
        "KAFKA_ADVERTISED_LISTENERS"]
    assert _host_port(services["postgres"], 5432) == urlsplit(fields["pg_dsn"].default.get_secret_value()).port
    assert _host_port(services["redis"], 6379) == urlsplit(fields["redis_url"].default.get_secret_value()).port
    assert str(services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"


def test_dockerfile_builds_one_package_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG SERVICE$", text, re.M)
    assert re.search(r"uv sync --frozen --no-dev .*--package \"\$\{SERVICE\}\"", text)
    assert re.search(r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim$", text, re.M)
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".cache", ".stack", ".git", "tests", "bench", "docs"} <= ignored
