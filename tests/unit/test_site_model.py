"""The site description: valid files, every kind of invalid input named by its path, the generator form."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from callstream_admin.__main__ import main
from callstream_common.site import (
    STRATEGIES,
    Queue,
    SiteError,
    derive_password,
    load_site_file,
    parse_site,
)

from conftest import ROOT

EXAMPLE = ROOT / "docs" / "site.example.yaml"
BENCH = ROOT / "bench" / "site-2000.yaml"


@pytest.fixture(scope="module")
def example_data() -> dict[str, Any]:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(data, dict)
    return data


def problems_of(data: dict[str, Any]) -> str:
    with pytest.raises(SiteError) as caught:
        parse_site(data)
    return str(caught.value)


def test_the_example_is_valid_and_defaults_apply() -> None:
    site = load_site_file(EXAMPLE)
    assert (site.tenant.id, site.tenant.timezone) == ("acme", "Europe/Paris")
    assert [len(site.pbxs), len(site.queues), len(site.dids), len(site.agent_configs)] == [2, 5, 6, 20]
    assert {queue.department for queue in site.queues} == {"sales", "collections", "support"}
    assert {reason.id for reason in site.pause_reasons} == {"lunch", "break", "training", "meeting"}
    sales = site.queues[0]
    assert (sales.ring_timeout_s, sales.sl_threshold_s, sales.priority, sales.moh_class) == (20, 20, 0, "default")
    assert Queue(id="q", department="d") == Queue(
        id="q", department="d", strategy="longest_idle", ring_timeout_s=20, wrapup_s=10, max_wait_s=300,
        overflow_action="hangup", sl_threshold_s=20)
    first = site.agent_configs[0]
    assert (first.id, first.extension, first.endpoint, first.pbx, first.floor) == ("a1001", "1001", "1001", "pbx-01", 1)
    assert site.pjsip.allow == "ulaw,alaw,g722" and site.pjsip.max_contacts == 1 and site.pjsip.remove_existing


def test_passwords_are_given_or_derived_and_never_shown() -> None:
    site = load_site_file(EXAMPLE)
    assert site.sip_passwords["a1010"].get_secret_value() == "k7Qe-2vLp-9xWm"
    secret = site.pjsip.password_secret
    assert secret is not None
    derived = site.sip_passwords["a1001"].get_secret_value()
    assert derived == derive_password(secret, "acme", "a1001").get_secret_value()
    assert len(derived) == 24 and derived != site.sip_passwords["a1002"].get_secret_value()
    assert load_site_file(EXAMPLE).sip_passwords["a1001"].get_secret_value() == derived  # stable across loads
    shown = repr(site) + str(site) + repr(site.agent_configs) + str(site.config())
    for secret_text in (derived, "k7Qe-2vLp-9xWm", secret.get_secret_value()):
        assert secret_text not in shown
    assert "password" not in site.agent_configs[0].model_dump()


def test_the_benchmark_file_expands_to_2000_agents_on_4_pbxs_and_9_floors() -> None:
    site = load_site_file(BENCH)
    agents = site.agent_configs
    assert len(agents) == 2000 and len({a.id for a in agents}) == 2000
    assert Counter(a.pbx for a in agents) == {"pbx-01": 500, "pbx-02": 500, "pbx-03": 500, "pbx-04": 500}
    assert {a.floor for a in agents} == set(range(1, 10))
    assert len({a.extension for a in agents}) == 2000 and len(site.sip_passwords) == 2000
    assert agents[0].id == "a10001" and agents[0].skills == {"sales": 5}


def test_generator_round_robins_pbxs_fills_floors_in_blocks_and_names_endpoints() -> None:
    data: dict[str, Any] = {
        "tenant": {"id": "t", "name": "T"},
        "pjsip": {"endpoint_template": "{pbx_id}-agent-{pbx_index:04d}", "password_secret": "s3cret-s3cret"},
        "pbxs": [{"id": "east", "ari_url": "http://127.0.0.1:8088", "entity_id": "02:00:00:00:00:01"},
                 {"id": "west", "ari_url": "http://127.0.0.1:8089", "entity_id": "02:00:00:00:00:02"}],
        "agents": [{"id": "boss", "name": "Boss", "extension": 999, "pbx": "west", "password": "boss-password"}],
        "agent_ranges": [{"prefix": "x", "count": 5, "first_extension": 100, "pbxs": ["east", "west"], "floors": 2,
                          "skills": {"sales": 2}, "name_template": "Agent {n} ({extension})"}],
    }
    site = parse_site(data)
    rows = [(a.id, a.name, a.extension, a.pbx, a.floor, a.endpoint) for a in site.agent_configs]
    assert rows == [
        ("boss", "Boss", "999", "west", None, "west-agent-0001"),
        ("x100", "Agent 1 (100)", "100", "east", 1, "east-agent-0001"),
        ("x101", "Agent 2 (101)", "101", "west", 1, "west-agent-0002"),
        ("x102", "Agent 3 (102)", "102", "east", 1, "east-agent-0002"),
        ("x103", "Agent 4 (103)", "103", "west", 2, "west-agent-0003"),
        ("x104", "Agent 5 (104)", "104", "east", 2, "east-agent-0003"),
    ]
    assert all(a.skills == {"sales": 2} for a in site.agent_configs[1:])
    explicit = {**data, "agents": [{**data["agents"][0], "endpoint": "boss-phone"}]}
    assert parse_site(explicit).agent_configs[0].endpoint == "boss-phone"


def test_site_config_answers_what_services_ask() -> None:
    config = load_site_file(EXAMPLE).config()
    vip = config.queue_for_did("+33180000110")
    assert vip is not None and vip.id == "sales-vip" and config.queue_for_did("+1555") is None
    assert len(config.agents_on("pbx-02")) == 10
    support, overflow = config.queues["support"], config.queues["support-overflow"]
    assert config.serves(config.agents["a1009"], support) and not config.serves(config.agents["a1001"], support)
    assert config.serves(config.agents["a1001"], overflow)  # no required skill: everyone


def _set(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of data with the value at 'queues.2.strategy' replaced (or deleted when value is ...)."""
    changed = copy.deepcopy(data)
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target: Any = changed
    for part in parents:
        target = target[part]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("queues.2.strategy", "fastest", "queues[2].strategy: Input should be 'longest_idle', 'fewest_calls'"),
        ("queues.0.ring_timeout_s", 0, "queues[0].ring_timeout_s: Input should be greater than or equal to 1"),
        ("queues.0.overflow_action", "transfer", "queues[0].overflow_action: Input should be 'queue', 'voicemail'"),
        ("queues.0.strategi", "ring_all", "queues[0].strategi: Extra inputs are not permitted"),
        ("queues.1.overflow_queue", "nope", "queues[1].overflow_queue: unknown queue 'nope'"),
        ("queues.1.overflow_queue", "sales-vip", "queues[1].overflow_queue: a queue cannot overflow into itself"),
        ("queues.3.overflow_queue", ..., "queues[3].overflow_queue: required when overflow_action is queue"),
        ("queues.0.overflow_queue", "support", "queues[0].overflow_queue: only with overflow_action queue"),
        ("queues.1.required_skill", ..., "queues[1].required_skill: required with strategy skills_based"),
        ("queues.4.min_skill_level", 3, "queues[4].min_skill_level: needs required_skill"),
        ("queues.2.min_skill_level", 6, "queues[2].min_skill_level: Input should be less than or equal to 5"),
        ("dids.1.queue", "nope", "dids[1].queue: unknown queue 'nope'"),
        ("dids.1.number", "+33180000101", "dids[1].number: '+33180000101' is already used by dids[0]"),
        ("dids.0.number", 33180000101, "dids[0].number: Value error, write the number in quotes"),
        ("agents.0.pbx", "pbx-09", "agents[0].pbx: unknown PBX 'pbx-09'"),
        ("agents.1.extension", 1001, "agents[1]: extension '1001' is already used by agents[0]"),
        ("agents.1.id", "a1001", "agents[1]: id 'a1001' is already used by agents[0]"),
        ("agents.1.endpoint", "1001", "agents[1]: endpoint '1001' is already used by agents[0]"),
        ("agents.0.extension", "10a1", "agents[0].extension: String should match pattern"),
        ("agents.0.skills.sales", 6, "agents[0].skills.sales: Input should be less than or equal to 5"),
        ("agents.0.skills.sales", 0, "agents[0].skills.sales: Input should be greater than or equal to 1"),
        ("agents.0.id", "a 1001", "agents[0].id: String should match pattern"),
        ("agents.0.name", ..., "agents[0].name: Field required"),
        ("pbxs.1.id", "pbx-01", "pbxs[1].id: 'pbx-01' is already used by pbxs[0]"),
        ("pbxs.0.ari_url", "not a url", "pbxs[0].ari_url: Input should be a valid URL"),
        ("pbxs.0.ari_url", "http://asterisk:secret@10.0.0.1:8088", "pbxs[0].ari_url: Value error, must not contain"),
        ("pbxs.0.entity_id", "pbx-one", "pbxs[0].entity_id: String should match pattern"),
        ("pbxs", [], "pbxs: Tuple should have at least 1 item"),
        ("tenant.timezone", "Europe/Pariss", "tenant.timezone: Value error, unknown time zone 'Europe/Pariss'"),
        ("tenant", ..., "tenant: Field required"),
        ("pause_reasons.0.id", "missed", "pause_reasons[0].id: 'missed' is set by the agent state machine"),
        ("pjsip.endpoint_template", "{desk}", "pjsip.endpoint_template: not a valid template"),
        ("pjsip.endpoint_template", "{extension:d}", "pjsip.endpoint_template: the template does not format"),
        ("pjsip.dtmf_mode", "rfc2833", "pjsip.dtmf_mode: Input should be 'rfc4733'"),
        ("pjsip.password_secret", ..., "agents[0]: needs a password (or set pjsip.password_secret"),
    ],
)
def test_invalid_input_names_the_field(example_data: dict[str, Any], path: str, value: Any, message: str) -> None:
    assert message in problems_of(_set(example_data, path, value))


def test_an_overflow_loop_is_refused(example_data: dict[str, Any]) -> None:
    looped = _set(example_data, "queues.0.overflow_action", "queue")
    looped = _set(looped, "queues.0.overflow_queue", "sales-vip")
    assert "queues[0].overflow_queue: overflows loop: sales -> sales-vip -> sales" in problems_of(looped)


def test_a_bad_password_is_named_but_never_echoed(example_data: dict[str, Any]) -> None:
    text = problems_of(_set(example_data, "agents.9.password", "short7!"))
    assert "agents[9].password: Value error, must be 8 to 80 characters long" in text and "short7!" not in text


def test_range_problems_name_the_range_once(example_data: dict[str, Any]) -> None:
    ranged = _set(example_data, "agent_ranges", [
        {"prefix": "r", "count": 50, "first_extension": 1005, "pbxs": ["pbx-01"]},
        {"prefix": "s", "count": 3, "first_extension": 3000, "pbxs": ["pbx-01", "pbx-07"]},
        {"prefix": "t", "count": 3, "first_extension": 4000, "pbxs": ["pbx-01"], "name_template": "{who}"},
    ])
    text = problems_of(ranged)
    assert "agent_ranges[0] (agent r1005): extension '1005' is already used by agents[4]" in text
    assert "agent_ranges[1].pbxs[1]: unknown PBX 'pbx-07'" in text
    assert "agent_ranges[2].name_template: not a valid template" in text
    assert text.count("agent_ranges[0]") == 1


def test_every_problem_is_reported_and_a_long_list_is_capped(example_data: dict[str, Any]) -> None:
    broken = copy.deepcopy(example_data)
    for did in broken["dids"]:
        did["queue"] = "gone"
    text = problems_of(broken)
    assert text.startswith("6 problems:") and text.count("unknown queue 'gone'") == 6
    many = _set(example_data, "dids", [{"number": f"+3318{n:07d}", "queue": "gone"} for n in range(100)])
    assert "... and 70 more" in problems_of(many)


def test_file_problems_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "site.yaml"
    broken.write_text("tenant: [unclosed\n")
    with pytest.raises(SiteError, match=r"site.yaml: not valid YAML"):
        load_site_file(broken)
    broken.write_text("- a list\n")
    with pytest.raises(SiteError, match=r"site.yaml: expected a mapping"):
        load_site_file(broken)
    with pytest.raises(SiteError, match=r"missing.yaml: cannot read"):
        load_site_file(tmp_path / "missing.yaml")
    broken.write_text(EXAMPLE.read_text().replace("strategy: fewest_calls", "strategy: fastest"))
    with pytest.raises(SiteError, match=r"site.yaml: queues\[2\].strategy: Input should be"):
        load_site_file(broken)


def test_the_strategies_are_the_documented_ones() -> None:
    assert set(STRATEGIES) == {"longest_idle", "fewest_calls", "round_robin", "ring_all", "random", "linear",
                               "skills_based"}


def test_site_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "check", str(EXAMPLE)]) == 0
    assert "valid; tenant acme: 2 PBXs, 5 queues, 6 DIDs, 20 agents, 4 pause reasons" in capsys.readouterr().out
    broken = tmp_path / "site.yaml"
    broken.write_text(EXAMPLE.read_text().replace("pbx: pbx-02, floor: 2, skills: {sales: 4}", "pbx: pbx-9"))
    assert main(["site", "check", str(broken)]) == 2
    assert "agents[10].pbx: unknown PBX 'pbx-9'" in capsys.readouterr().err
    assert main(["site", "check"]) == 2
    assert main(["site", "check", str(EXAMPLE), "--pg-dsn", "x"]) == 2
