"""The site description: one YAML file with a tenant's PBXs, queues, DIDs, agents and pause reasons.

`callstream-admin site load FILE` validates it and applies it to the business and PBX databases
(callstream_common.site.store). Examples: docs/site.example.yaml (20 agents listed one by one) and
bench/site-2000.yaml (2,000 agents from `agent_ranges`, the compact form for big sites).

Validation happens in two steps, both reporting every problem with its path in the file
(`queues[2].strategy: Input should be ...`): the shape of each entry (pydantic), then what entries say about
each other (DIDs and overflows point at existing queues, agents at existing PBXs, extensions and endpoints are
unique). A valid `Site` also holds its agents expanded and resolved (`agent_configs`) and their SIP passwords
(`sip_passwords`), kept apart because the passwords go to the PBX database only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

Strategy = Literal["longest_idle", "fewest_calls", "round_robin", "ring_all", "random", "linear", "skills_based"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
OverflowAction = Literal["queue", "voicemail", "hangup"]
DtmfMode = Literal["rfc4733", "inband", "info", "auto", "auto_info"]

# Pause reasons the agent state machine sets by itself (docs/acd.md); a site cannot redefine them.
SYSTEM_PAUSE_REASONS = frozenset({"login", "missed", "endpoint_lost"})
# Placeholders of `pjsip.endpoint_template`. pbx_index numbers each PBX's agents 1, 2, 3 ... in file order,
# which is how the PBX simulator names its phones (`{pbx_id}-agent-{pbx_index:04d}`: east-agent-0001).
ENDPOINT_FIELDS = frozenset({"extension", "agent_id", "pbx_id", "pbx_index"})
NAME_FIELDS = frozenset({"extension", "n"})
# At most this many problems are listed; one mistake in a 2,000-agent range must not print 2,000 lines.
MAX_PROBLEMS = 30


def _number_as_text(value: object) -> object:
    """Extensions may be written as YAML integers (`extension: 1001`)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _number_must_be_quoted(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError("write the number in quotes: unquoted, YAML reads it as an integer and drops a leading + or 0")
    return value


# Ids end up in Kafka keys, Redis keys (`cs:<tenant>:agent:<id>`) and log lines: no spaces, no colons.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Level = Annotated[int, Field(ge=1, le=5)]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$"), BeforeValidator(_number_as_text)]
DidNumber = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{2,20}$"), BeforeValidator(_number_must_be_quoted)]
# The endpoint id is also the SIP auth username, which Asterisk stores in 40 characters.
_ENDPOINT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")
EndpointName = Annotated[str, StringConstraints(pattern=f"^{_ENDPOINT_PATTERN.pattern}$")]
Asterisk40 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.+@-]{1,40}$")]


class SiteError(Exception):
    """The site file is invalid, or cannot be applied; `problems` lists each one with its path in the file.

    Deliberately not a ValueError: raised inside a pydantic validator, it travels out unchanged instead of
    being folded into a ValidationError without a path.
    """

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        if len(problems) == 1:
            super().__init__(f"{where}{problems[0]}")
            return
        shown = problems[:MAX_PROBLEMS]
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        super().__init__(f"{where}{len(problems)} problems:\n  " + "\n  ".join(shown) + more)


class _Frozen(BaseModel):
    # hide_input_in_errors: a rejected value can be a password; error texts never echo input.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class Tenant(_Frozen):
    id: Id
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Paris)") from None
        return value


class Pbx(_Frozen):
    id: Id
    ari_url: AnyHttpUrl
    entity_id: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$", description="Asterisk's entity id.")

    @field_validator("ari_url")
    @classmethod
    def _no_credentials(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        # The business database is readable by every service; ARI credentials belong in the gateway's settings.
        if value.username or value.password:
            raise ValueError("must not contain credentials (the gateway's settings hold them)")
        return value


class Queue(_Frozen):
    id: Id
    department: Id
    strategy: Strategy = "longest_idle"
    ring_timeout_s: int = Field(default=20, ge=1, le=600)
    wrapup_s: int = Field(default=10, ge=0, le=3600)
    max_wait_s: int = Field(default=300, ge=1, le=86_400)
    # hangup by default: voicemail needs a mailbox and another queue needs choosing; both are explicit choices.
    overflow_action: OverflowAction = "hangup"
    overflow_queue: Id | None = None
    sl_threshold_s: int = Field(default=20, ge=1, le=3600, description="Answered within this counts for the SL.")
    priority: int = Field(default=0, ge=-1000, le=1000, description="Higher first for the same agents.")
    required_skill: Id | None = None
    min_skill_level: Level = 1
    relax_after_s: int | None = Field(default=None, ge=1, le=3600, description="Each wait of this lowers the "
                                      "required level by one, until any agent with the skill qualifies; none: never.")
    moh_class: str = Field(default="default", min_length=1, max_length=80)


class Did(_Frozen):
    number: DidNumber
    queue: Id


class PauseReason(_Frozen):
    id: Id
    label: str = Field(min_length=1, max_length=80)
    paid: bool = False
    max_duration_s: int | None = Field(default=None, ge=1, le=86_400)


def _check_password(value: SecretStr | None) -> SecretStr | None:
    # Asterisk stores it in 80 characters; the message never shows the value.
    if value is not None and not 8 <= len(value.get_secret_value()) <= 80:
        raise ValueError("must be 8 to 80 characters long")
    return value


class Agent(_Frozen):
    id: Id
    name: str = Field(min_length=1, max_length=200)
    extension: Extension
    pbx: Id
    floor: int | None = Field(default=None, ge=0, le=1000)
    skills: dict[Id, Level] = Field(default_factory=dict)
    endpoint: EndpointName | None = Field(default=None, description="Default: from pjsip.endpoint_template.")
    password: SecretStr | None = Field(default=None, description="SIP password; stored in the PBX database only.")

    @field_validator("password")
    @classmethod
    def _password_length(cls, value: SecretStr | None) -> SecretStr | None:
        return _check_password(value)


class AgentRange(_Frozen):
    """`count` agents: ids `<prefix><extension>` from `first_extension` up, PBXs taken in turn, floors filled in
    contiguous blocks (desks are numbered floor by floor), the same skills for all."""

    prefix: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
    count: int = Field(ge=1, le=100_000)
    first_extension: int = Field(ge=0, le=10**19)
    pbxs: tuple[Id, ...] = Field(min_length=1)
    floors: int | None = Field(default=None, ge=1, le=1000, description="Spread over this many floors.")
    first_floor: int = Field(default=1, ge=0, le=1000)
    skills: dict[Id, Level] = Field(default_factory=dict)
    name_template: str = Field(default="Agent {extension}", min_length=1, max_length=200)


class Pjsip(_Frozen):
    """How each agent's phone is provisioned into ps_endpoints / ps_aors / ps_auths (PBX database)."""

    context: Asterisk40 = Field(default="agents", description="Dialplan context of calls the phones place.")
    transport: Asterisk40 | None = Field(default=None, description="None: Asterisk picks a matching transport.")
    disallow: str = Field(default="all", max_length=200)
    allow: str = Field(default="ulaw,alaw,g722", max_length=200)
    dtmf_mode: DtmfMode = "rfc4733"
    # Media stays anchored on Asterisk: recording, snooping (QA listen/whisper/barge) and bridging need it.
    direct_media: bool = False
    # Phones sit behind NAT more often than not; these make Asterisk answer where packets come from.
    force_rport: bool = True
    rewrite_contact: bool = True
    rtp_symmetric: bool = True
    ice_support: bool = False
    # One registered phone per agent; a new registration replaces the old one (hot-desking, phone swaps).
    max_contacts: int = Field(default=1, ge=1, le=100)
    remove_existing: bool = True
    # OPTIONS pings let Asterisk notice a dead phone (EndpointStateChange offline -> paused("endpoint_lost")).
    qualify_frequency: int = Field(default=60, ge=0, le=86_400, description="0: no OPTIONS pings.")
    realm: str | None = Field(default=None, max_length=255, description="None: Asterisk's default realm.")
    mailbox_context: Asterisk40 | None = Field(default=None, description="Set: mailboxes = <extension>@<this>.")
    endpoint_template: str = Field(default="{extension}", min_length=1, max_length=100)
    password_secret: SecretStr | None = Field(
        default=None, description="Agents without a password get derive_password(secret, tenant, agent id).")


class AgentConfig(_Frozen):
    """An agent as services see it: resolved endpoint, no password."""

    id: Id
    name: str
    extension: Extension
    endpoint: EndpointName
    pbx: Id
    floor: int | None = None
    skills: dict[Id, Level] = Field(default_factory=dict)


@dataclass(frozen=True)
class SiteConfig:
    """What the router and agent-state load at start (store.load_config), or what a Site describes (Site.config)."""

    tenant: Tenant
    pbxs: Mapping[str, Pbx]
    queues: Mapping[str, Queue]
    dids: Mapping[str, str]  # number -> queue id
    agents: Mapping[str, AgentConfig]
    pause_reasons: Mapping[str, PauseReason] = field(default_factory=dict)

    def queue_for_did(self, number: str) -> Queue | None:
        queue_id = self.dids.get(number)
        return None if queue_id is None else self.queues.get(queue_id)

    def agents_on(self, pbx_id: str) -> list[AgentConfig]:
        return [agent for agent in self.agents.values() if agent.pbx == pbx_id]

    @staticmethod
    def serves(agent: AgentConfig, queue: Queue) -> bool:
        """An agent serves a queue when it has the queue's skill at any level (the level required for a given
        call is the router's decision, relaxed with the wait); a queue without a skill is served by all."""
        return queue.required_skill is None or queue.required_skill in agent.skills


class Site(_Frozen):
    """A validated site description. Build one with parse_site or load_site_file, variants too: model_copy skips
    validation and would keep the agents expanded from the original."""

    tenant: Tenant
    pjsip: Pjsip = Field(default_factory=Pjsip)
    pbxs: tuple[Pbx, ...] = Field(min_length=1)
    queues: tuple[Queue, ...] = ()
    dids: tuple[Did, ...] = ()
    agents: tuple[Agent, ...] = ()
    agent_ranges: tuple[AgentRange, ...] = ()
    pause_reasons: tuple[PauseReason, ...] = ()

    _agent_configs: tuple[AgentConfig, ...] = PrivateAttr(default=())
    _sip_passwords: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Site:
        problems: list[str] = []
        _check_ids(self, problems)
        _check_queues(self, problems)
        configs, passwords = _expand_agents(self, problems)
        if problems:
            raise SiteError(problems)
        self._agent_configs = tuple(configs)
        self._sip_passwords = passwords
        return self

    @property
    def agent_configs(self) -> tuple[AgentConfig, ...]:
        """Every agent, listed and generated, in file order, with its endpoint resolved."""
        return self._agent_configs

    @property
    def sip_passwords(self) -> Mapping[str, SecretStr]:
        """Agent id -> SIP password (given, or derived from pjsip.password_secret)."""
        return self._sip_passwords

    def config(self) -> SiteConfig:
        return SiteConfig(
            tenant=self.tenant,
            pbxs={pbx.id: pbx for pbx in self.pbxs},
            queues={queue.id: queue for queue in self.queues},
            dids={did.number: did.queue for did in self.dids},
            agents={agent.id: agent for agent in self._agent_configs},
            pause_reasons={reason.id: reason for reason in self.pause_reasons},
        )


def derive_password(secret: SecretStr, tenant: str, agent_id: str) -> SecretStr:
    """A per-agent SIP password from one site secret: the same on every load (so a reload changes nothing), and
    computable by the tool that provisions the phones. 24 hex digits: 96 bits, and no character a phone's
    keypad or web form would trip on."""
    digest = hmac.new(secret.get_secret_value().encode(), f"{tenant}/{agent_id}".encode(), hashlib.sha256)
    return SecretStr(digest.hexdigest()[:24])


def parse_site(data: object, source: str = "") -> Site:
    """Validate a site description already read from YAML (or built in code); SiteError on any problem."""
    try:
        return Site.model_validate(data)
    except ValidationError as exc:
        raise SiteError([f"{_path(err['loc'])}: {err['msg']}" for err in exc.errors()], source) from None


def load_site_file(path: Path | str) -> Site:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise SiteError([f"cannot read: {exc.strerror}"], str(path)) from None
    except yaml.YAMLError as exc:
        raise SiteError([f"not valid YAML: {exc}"], str(path)) from None
    if not isinstance(data, dict):
        raise SiteError(["expected a mapping with tenant, pbxs, queues, dids, agents ..."], str(path))
    try:
        return parse_site(data, str(path))
    except SiteError as exc:
        raise SiteError(exc.problems, str(path)) from None


def _path(loc: Iterable[int | str]) -> str:
    """('queues', 2, 'strategy') -> 'queues[2].strategy'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(site)"


def _duplicates(problems: list[str], what: str, values: Iterable[str], label: str) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            problems.append(f"{what}[{index}].{label}: {value!r} is already used by {what}[{seen[value]}]")
        else:
            seen[value] = index


def _check_ids(site: Site, problems: list[str]) -> None:
    _duplicates(problems, "pbxs", (pbx.id for pbx in site.pbxs), "id")
    _duplicates(problems, "pbxs", (pbx.entity_id.lower() for pbx in site.pbxs), "entity_id")
    _duplicates(problems, "queues", (queue.id for queue in site.queues), "id")
    _duplicates(problems, "dids", (did.number for did in site.dids), "number")
    _duplicates(problems, "pause_reasons", (reason.id for reason in site.pause_reasons), "id")
    queues = {queue.id for queue in site.queues}
    for index, did in enumerate(site.dids):
        if did.queue not in queues:
            problems.append(f"dids[{index}].queue: unknown queue {did.queue!r}")
    for index, reason in enumerate(site.pause_reasons):
        if reason.id in SYSTEM_PAUSE_REASONS:
            problems.append(f"pause_reasons[{index}].id: {reason.id!r} is set by the agent state machine itself")


def _check_queues(site: Site, problems: list[str]) -> None:
    by_id = {queue.id: queue for queue in site.queues}
    for index, queue in enumerate(site.queues):
        where = f"queues[{index}]"
        if queue.overflow_action == "queue":
            if queue.overflow_queue is None:
                problems.append(f"{where}.overflow_queue: required when overflow_action is queue")
            elif queue.overflow_queue == queue.id:
                problems.append(f"{where}.overflow_queue: a queue cannot overflow into itself")
            elif queue.overflow_queue not in by_id:
                problems.append(f"{where}.overflow_queue: unknown queue {queue.overflow_queue!r}")
            else:
                chain = _overflow_chain(queue.id, by_id)
                if chain[-1] == queue.id:
                    problems.append(f"{where}.overflow_queue: overflows loop: {' -> '.join(chain)}")
        elif queue.overflow_queue is not None:
            problems.append(f"{where}.overflow_queue: only with overflow_action queue (it is {queue.overflow_action})")
        if queue.required_skill is None:
            if queue.strategy == "skills_based":
                problems.append(f"{where}.required_skill: required with strategy skills_based")
            if queue.min_skill_level != 1:
                problems.append(f"{where}.min_skill_level: needs required_skill")
            if queue.relax_after_s is not None:
                problems.append(f"{where}.relax_after_s: needs required_skill")


def _overflow_chain(start: str, by_id: Mapping[str, Queue]) -> list[str]:
    """start, its overflow queue, that one's ... until a queue without one, or a queue seen before."""
    chain = [start]
    target = by_id[start].overflow_queue
    while target is not None and target in by_id:
        chain.append(target)
        if target in chain[:-1]:
            break
        target = by_id[target].overflow_queue
    return chain


def _template_fields(template: str) -> set[str] | None:
    """The placeholders of a str.format template, or None if it does not parse."""
    try:
        return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template)
                if name is not None}
    except ValueError:
        return None


@dataclass
class _Expansion:
    """Running state of the agent expansion: what is taken, and by which entry of the file."""

    ids: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)
    endpoints: dict[str, str] = field(default_factory=dict)
    per_pbx: dict[str, int] = field(default_factory=dict)


def _expand_agents(site: Site, problems: list[str]) -> tuple[list[AgentConfig], dict[str, SecretStr]]:
    pjsip = site.pjsip
    pbxs = {pbx.id for pbx in site.pbxs}
    template_ok = _check_template(pjsip.endpoint_template, ENDPOINT_FIELDS, "pjsip.endpoint_template", problems,
                                  extension="1001", agent_id="a1001", pbx_id="pbx-01", pbx_index=1)
    state = _Expansion()
    configs: list[AgentConfig] = []
    passwords: dict[str, SecretStr] = {}

    def add(where: str, agent: Agent) -> bool:
        """Resolve and record one agent; False (with a problem recorded) if it clashes."""
        index = state.per_pbx.get(agent.pbx, 0) + 1
        state.per_pbx[agent.pbx] = index
        endpoint = agent.endpoint
        if endpoint is None:
            if not template_ok:
                return False
            endpoint = pjsip.endpoint_template.format(
                extension=agent.extension, agent_id=agent.id, pbx_id=agent.pbx, pbx_index=index)
        clash = _claim(state, where, agent.id, agent.extension, endpoint)
        if clash:
            problems.append(clash)
            return False
        password = agent.password
        if password is None:
            if pjsip.password_secret is None:
                problems.append(f"{where}: needs a password (or set pjsip.password_secret to derive one per agent)")
                return False
            password = derive_password(pjsip.password_secret, site.tenant.id, agent.id)
        configs.append(AgentConfig(id=agent.id, name=agent.name, extension=agent.extension, endpoint=endpoint,
                                   pbx=agent.pbx, floor=agent.floor, skills=agent.skills))
        passwords[agent.id] = password
        return True

    for position, agent in enumerate(site.agents):
        if agent.pbx not in pbxs:
            problems.append(f"agents[{position}].pbx: unknown PBX {agent.pbx!r}")
            continue
        add(f"agents[{position}]", agent)

    for position, spec in enumerate(site.agent_ranges):
        where = f"agent_ranges[{position}]"
        unknown = [f"{where}.pbxs[{i}]: unknown PBX {pbx!r}" for i, pbx in enumerate(spec.pbxs) if pbx not in pbxs]
        name_ok = _check_template(spec.name_template, NAME_FIELDS, f"{where}.name_template", problems,
                                  extension="1001", n=1)
        if unknown or not name_ok:
            problems.extend(unknown)
            continue
        for i in range(spec.count):
            extension = str(spec.first_extension + i)
            floor = None if spec.floors is None else spec.first_floor + i * spec.floors // spec.count
            generated = Agent.model_construct(
                id=f"{spec.prefix}{extension}", name=spec.name_template.format(extension=extension, n=i + 1)[:200],
                extension=extension, pbx=spec.pbxs[i % len(spec.pbxs)], floor=floor, skills=dict(spec.skills),
                endpoint=None, password=None)
            # One clash in a range is reported once: the rest of the range would only repeat it.
            if not add(f"{where} (agent {generated.id})", generated):
                break
    return configs, passwords


def _claim(state: _Expansion, where: str, agent_id: str, extension: str, endpoint: str) -> str | None:
    if len(agent_id) > 64:
        return f"{where}: id {agent_id!r} is longer than 64 characters"
    for taken, value, label in ((state.ids, agent_id, "id"), (state.extensions, extension, "extension"),
                                (state.endpoints, endpoint, "endpoint")):
        if value in taken:
            return f"{where}: {label} {value!r} is already used by {taken[value]}"
    if not _ENDPOINT_PATTERN.fullmatch(endpoint):
        return f"{where}: endpoint {endpoint!r} is not a valid endpoint name (letters, digits, _.+-; at most 40)"
    state.ids[agent_id] = where
    state.extensions[extension] = where
    state.endpoints[endpoint] = where
    return None


def _check_template(template: str, allowed: frozenset[str], where: str, problems: list[str], **sample: Any) -> bool:
    fields = _template_fields(template)
    if fields is None or not fields <= allowed:
        names = ", ".join("{" + name + "}" for name in sorted(allowed))
        problems.append(f"{where}: not a valid template (placeholders: {names})")
        return False
    try:
        template.format(**sample)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        problems.append(f"{where}: the template does not format (e.g. {{pbx_index:04d}} works, {{extension:d}} not)")
        return False
    return True

