"""Settings: the layers in their order, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from callstream_common.logs import redact_url
from callstream_common.settings import ServiceSettings, SettingsError, load_settings
from callstream_router.settings import ProjectorSettings, RouterSettings


class RouterLikeSettings(ServiceSettings):
    ring_timeout_s: int = 20


def test_layers_defaults_file_environment_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "router.yaml"
    config.write_text("tenant: from-file\nring_timeout_s: 25\nlog-level: WARNING\npbx_partitions: 6\n")
    monkeypatch.setenv("CALLSTREAM_TENANT", "from-env")
    monkeypatch.setenv("CALLSTREAM_PBX_PARTITIONS", "9")
    loaded = load_settings(RouterLikeSettings, ["--config", str(config), "--pbx-partitions", "24"])
    assert loaded.ring_timeout_s == 25          # file beats default
    assert loaded.log_level == "WARNING"        # file, dashed key
    assert loaded.tenant == "from-env"          # environment beats file
    assert loaded.pbx_partitions == 24          # command line beats environment
    assert loaded.kafka_bootstrap == "127.0.0.1:19092"  # default


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("ring_timeout_s: 31\n")
    monkeypatch.setenv("CALLSTREAM_CONFIG", str(config))
    assert load_settings(RouterLikeSettings, []).ring_timeout_s == 31


@pytest.mark.parametrize(
    ("argv", "file_text", "message"),
    [
        (["--pbx-partitions", "0"], None, "pbx_partitions: Input should be greater than or equal to 1"),
        (["--log-level", "LOUD"], None, "log_level: Input should be"),
        (["--topic-prefix", "a b"], None, "topic_prefix: String should match pattern"),
        (["--no-such-flag", "1"], None, "invalid command line: --no-such-flag 1"),
        ([], "ring_timeout_s: soon\n", "ring_timeout_s: Input should be a valid integer"),
        ([], "ring_timout_s: 5\n", "unknown setting(s): ring_timout_s"),
        ([], "- a list\n", "expected a mapping"),
        ([], "a: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_input_names_the_field(tmp_path: Path, argv: list[str], file_text: str | None, message: str) -> None:
    if file_text is not None:
        config = tmp_path / "bad.yaml"
        config.write_text(file_text)
        argv = ["--config", str(config), *argv]
    with pytest.raises(SettingsError) as caught:
        load_settings(RouterLikeSettings, argv)
    assert message in str(caught.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="nope.yaml: No such file"):
        load_settings(RouterLikeSettings, ["--config", str(tmp_path / "nope.yaml")])


def test_secrets_never_print() -> None:
    loaded = load_settings(ServiceSettings, ["--pg-dsn", "postgresql://u:hunter2@db/x", "--redis-url",
                                             "redis://:hunter3@r:6379/0"])
    assert "hunter2" not in repr(loaded) and "hunter3" not in str(loaded)
    assert loaded.pg_dsn.get_secret_value().endswith("@db/x")


def test_redact_url_drops_credentials() -> None:
    assert redact_url("https://asterisk:s3cret@pbx-01.example:8089/ari") == "https://pbx-01.example:8089/ari"
    assert redact_url("ws://pbx:8088/ari/events?app=x") == "ws://pbx:8088/ari/events?app=x"


@pytest.mark.parametrize(
    ("settings_class", "argv", "message"),
    [
        (RouterSettings, ["--max-call-age-s", "0"], "max_call_age_s: Input should be greater than 0"),
        (RouterSettings, ["--deadline-backlog-slack", "-1"],
         "deadline_backlog_slack: Input should be greater than or equal to 0"),
        (RouterSettings, ["--session-timeout-s", "5"], "session_timeout_s: Input should be greater than or equal to 6"),
        (ProjectorSettings, ["--batch-size", "0"], "batch_size: Input should be greater than or equal to 1"),
        (ProjectorSettings, ["--fetch-wait-ms", "9000"], "fetch_wait_ms: Input should be less than or equal to 5000"),
    ],
)
def test_router_and_projector_settings_refuse_bad_values_by_name(settings_class: type[ServiceSettings],
                                                                 argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(settings_class, argv)


def test_the_router_projector_says_what_is_wrong_with_its_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    from callstream_router.projector import main

    assert main(["--batch-size", "0"]) == 2
    assert "batch_size" in capsys.readouterr().err
