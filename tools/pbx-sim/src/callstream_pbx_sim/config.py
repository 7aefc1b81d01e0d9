"""Typed settings of the simulator: one site (credentials, clock, shared knobs) and the PBXs it serves.

Layering, as everywhere in callstream: defaults in these models, then the site YAML (`--site`), then the
command line. Everything is validated by pydantic; an invalid field fails with its dotted path and the problem
(`pbxs.1.port: Input should be less than or equal to 65535`), never with a traceback.
"""

from __future__ import annotations

import math
import random
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENTITY_ID_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a site file must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dist(_Strict):
    """A duration distribution in simulated seconds; a bare number in YAML means `fixed`."""

    dist: Literal["fixed", "uniform", "exponential", "normal", "lognormal"] = "fixed"
    value: float | None = Field(default=None, ge=0)
    mean: float | None = Field(default=None, ge=0)
    sd: float | None = Field(default=None, ge=0)
    min: float | None = Field(default=None, ge=0)
    max: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return {"dist": "fixed", "value": float(data)}
        return data

    @model_validator(mode="after")
    def _check(self) -> Dist:
        if self.dist == "fixed" and self.value is None and self.mean is None:
            raise ValueError("a fixed distribution needs 'value'")
        if self.dist == "uniform" and (self.min is None or self.max is None):
            raise ValueError("a uniform distribution needs 'min' and 'max'")
        if self.dist in ("exponential", "normal", "lognormal") and self.mean is None:
            raise ValueError(f"a {self.dist} distribution needs 'mean'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("'min' is greater than 'max'")
        return self

    def sample(self, rng: random.Random) -> float:
        if self.dist == "fixed":
            x = self.value if self.value is not None else float(self.mean or 0.0)
        elif self.dist == "uniform":
            x = rng.uniform(float(self.min or 0.0), float(self.max or 0.0))
        elif self.dist == "exponential":
            mean = float(self.mean or 0.0)
            x = rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        elif self.dist == "normal":
            x = rng.gauss(float(self.mean or 0.0), float(self.sd or 0.0))
        else:
            # Parameterised by the distribution's own mean and sd, which is what people write down.
            mean = max(float(self.mean or 0.0), 1e-9)
            sd = float(self.sd if self.sd is not None else mean)
            sigma2 = math.log(1.0 + (sd * sd) / (mean * mean))
            x = rng.lognormvariate(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))
        if self.min is not None:
            x = max(x, self.min)
        if self.max is not None:
            x = min(x, self.max)
        return max(x, 0.0)


def fixed(value: float) -> Dist:
    return Dist(dist="fixed", value=value)


PhoneMode = Literal["answer", "no_answer", "busy", "reject", "unreachable"]


class PhoneBehaviour(_Strict):
    """How a simulated SIP phone reacts to a call offered to it (agent or supervisor endpoint)."""

    registered: bool = True
    mode: PhoneMode = "answer"
    # 100 Trying -> 180 Ringing: how long before the channel goes to Ringing.
    ring_after_s: Dist = Field(default_factory=lambda: fixed(0.1))
    answer_after_s: Dist = Field(default_factory=lambda: fixed(2.0))
    # For mode=reject: how long it rings before the 603 Decline.
    reject_after_s: Dist = Field(default_factory=lambda: fixed(3.0))
    # The agent hangs up this long after answering (None: only when told, or when the far end does).
    hangup_after_s: Dist | None = None


class PhoneGroup(_Strict):
    count: int = Field(default=0, ge=0, le=100_000)
    naming: Literal["named", "extension"] = "named"
    first_extension: int = Field(default=1001, ge=0)
    context: str = "from-internal"
    behaviour: PhoneBehaviour = Field(default_factory=PhoneBehaviour)


Outcome = Literal["answer", "busy", "no_answer", "congestion", "unavailable", "invalid", "machine"]


class OutcomeRule(_Strict):
    """What the far end of an outbound (trunk) call does, chosen by the dialled number."""

    # An Asterisk extension pattern (`_1NXXNXXXXXX`, `_X.`) or an exact number; `regex` instead if given.
    match: str = "_X."
    regex: str | None = None
    outcome: Outcome = "answer"
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    ring_s: Dist = Field(default_factory=lambda: fixed(4.0))
    # Human: hangs up this long after answering. Machine: greeting length, then `machine_hangup_s` more.
    talk_s: Dist = Field(default_factory=lambda: fixed(60.0))
    greeting_s: Dist = Field(default_factory=lambda: fixed(4.0))
    machine_hangup_s: Dist = Field(default_factory=lambda: fixed(20.0))

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return v


class DidConfig(_Strict):
    number: str = Field(min_length=1)
    # Poisson arrivals per simulated second (0: only injected calls).
    rate_per_s: float = Field(default=0.0, ge=0.0)
    # Optional 24 hourly multipliers of the rate (simulated time of day, from `start_hour`).
    profile: list[Annotated[float, Field(ge=0.0)]] | None = None
    patience_s: Dist = Field(default_factory=lambda: Dist(dist="exponential", mean=90.0))
    talk_s: Dist = Field(default_factory=lambda: Dist(dist="lognormal", mean=180.0, sd=120.0))
    hangup_by: Literal["caller", "agent"] = "caller"
    app: str | None = None
    args: list[str] | None = None
    caller_prefix: str = "+1555"

    @field_validator("profile")
    @classmethod
    def _profile_24(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and len(v) != 24:
            raise ValueError(f"needs 24 hourly multipliers, got {len(v)}")
        return v


class PbxConfig(_Strict):
    name: str = Field(default="pbx1", pattern=r"^[A-Za-z0-9_.-]+$")
    host: str | None = None
    port: int = Field(default=8088, ge=0, le=65535)
    entity_id: str | None = None
    app: str | None = None
    agents: PhoneGroup = Field(default_factory=lambda: PhoneGroup(count=20))
    supervisors: PhoneGroup = Field(
        default_factory=lambda: PhoneGroup(count=2, first_extension=2001)
    )
    trunk: str = Field(default="carrier", pattern=r"^[A-Za-z0-9_.-]+$")
    dids: list[DidConfig] = Field(default_factory=list)
    outcomes: list[OutcomeRule] = Field(default_factory=lambda: [OutcomeRule()])
    traffic: bool = True
    seed: int | None = None

    @field_validator("entity_id")
    @classmethod
    def _entity(cls, v: str | None) -> str | None:
        if v is not None and not ENTITY_ID_RE.match(v):
            raise ValueError("must look like a MAC address, e.g. 00:11:22:33:44:55")
        return v


class PbxTemplate(_Strict):
    """`pbxs: {count: N, base_port: P, template: {...}}`: N identical PBXs on consecutive ports."""

    count: int = Field(ge=1, le=1000)
    base_port: int = Field(default=8088, ge=1, le=65535)
    template: PbxConfig = Field(default_factory=PbxConfig)


class SiteConfig(_Strict):
    host: str = "127.0.0.1"
    user: str = "asterisk"
    password: str = "asterisk"
    app: str = "callstream"
    api_docs: Path | None = None
    seed: int = 1
    time_scale: float = Field(default=1.0, gt=0.0, le=10_000.0)
    # Wall-clock epoch of simulated time 0; fixing it makes channel ids and timestamps reproducible.
    epoch: float | None = Field(default=None, ge=0.0)
    start_hour: float = Field(default=9.0, ge=0.0, lt=24.0)
    asterisk_version: str = "23.4.1"
    # ari.conf channelvars=: variables copied into every channel snapshot (costly in real Asterisk too).
    channelvars: list[str] = Field(default_factory=list)
    # Asterisk closes a WebSocket whose reader stalls longer than websocket_write_timeout (default 100 ms);
    # the simulator's default is lenient so that a busy test client is not dropped. 0 disables it.
    ws_write_timeout_ms: int = Field(default=5000, ge=0)
    # How many ARI requests GET /_sim/requests remembers.
    request_log_size: int = Field(default=100_000, ge=0)
    pbxs: list[PbxConfig] | PbxTemplate = Field(default_factory=lambda: [PbxConfig()])

    @field_validator("api_docs")
    @classmethod
    def _docs_dir(cls, v: Path | None) -> Path | None:
        if v is not None and not (v / "resources.json").is_file():
            raise ValueError(f"{v} has no resources.json")
        return v

    @model_validator(mode="after")
    def _unique(self) -> SiteConfig:
        pbxs = self.pbx_list()
        names = [p.name for p in pbxs]
        if len(set(names)) != len(names):
            raise ValueError("pbxs: names must be unique")
        ports = [p.port for p in pbxs if p.port != 0]
        if len(set(ports)) != len(ports):
            raise ValueError("pbxs: ports must be unique")
        return self

    def pbx_list(self) -> list[PbxConfig]:
        """The PBXs with every default resolved (name, port, entity id, app, host)."""
        if isinstance(self.pbxs, PbxTemplate):
            t = self.pbxs
            raw = [
                t.template.model_copy(update={"name": f"pbx{i + 1}", "port": t.base_port + i, "entity_id": None})
                for i in range(t.count)
            ]
        else:
            raw = list(self.pbxs)
        out = []
        for i, p in enumerate(raw):
            out.append(p.model_copy(update={
                "entity_id": p.entity_id or f"02:00:00:00:{(i + 1) // 256:02x}:{(i + 1) % 256:02x}",
                "app": p.app or self.app,
                "host": p.host or self.host,
                "seed": p.seed if p.seed is not None else self.seed,
            }))
        return out


class ConfigError(Exception):
    """Invalid configuration; the message names the field and the problem."""


# Branch names pydantic puts in error locations of the `pbxs` union (a list, or a template).
_UNION_TAGS = frozenset({"list[PbxConfig]", "PbxTemplate"})


def format_validation_error(exc: ValidationError) -> str:
    errors = exc.errors()
    # A union reports every branch's failure; drop "this is not a <branch>" when the other branch has the
    # real problem, so that the message names the field the user got wrong.
    mismatch = [e for e in errors if e["loc"] and e["loc"][-1] in _UNION_TAGS
                and e["type"] in ("model_type", "list_type", "dict_type")]
    if len(mismatch) < len(errors):
        errors = [e for e in errors if e not in mismatch]
    lines = []
    for err in errors:
        where = ".".join(str(p) for p in err["loc"] if p not in _UNION_TAGS) or "(top level)"
        lines.append(f"{where}: {err['msg']}")
    return "; ".join(lines)


def load_site(path: Path | None, overrides: dict[str, Any]) -> SiteConfig:
    """Site YAML (if any) with the CLI's `overrides` applied on top, validated."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: (top level): must be a mapping")
        data = loaded
    pbx_overrides = overrides.pop("_pbx", {})
    data.update({k: v for k, v in overrides.items() if v is not None})
    if pbx_overrides:
        # Single-PBX command line: the one PBX is described by the flags (only without --site).
        pbx = dict(data.get("pbxs", [{}])[0]) if isinstance(data.get("pbxs"), list) and data["pbxs"] else {}
        pbx.update(pbx_overrides)
        data["pbxs"] = [pbx]
    try:
        return SiteConfig.model_validate(data)
    except ValidationError as exc:
        source = f"{path}: " if path is not None else ""
        raise ConfigError(source + format_validation_error(exc)) from exc
