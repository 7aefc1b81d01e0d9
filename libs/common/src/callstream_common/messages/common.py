"""Field types shared by several message models."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# Ids chosen by callstream or the CMS. ARI limits ids it stores to 149 characters (AST_MAX_PUBLIC_UNIQUEID),
# and channel/bridge ids are derived from these, so they stay well below.
Id = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@\-]+$")]
# An ARI channel/bridge/playback/recording id or name as Asterisk gives it.
AriId = Annotated[str, StringConstraints(min_length=1, max_length=149)]
# A dialable number or extension: digits, with an optional leading + and the * and # keys.
PhoneNumber = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^\+?[0-9*#]+$")]
# A PJSIP endpoint as ARI dials it, e.g. "PJSIP/1001".
Endpoint = Annotated[str, StringConstraints(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9_\-]+/.+$")]
Skill = Annotated[str, StringConstraints(min_length=1, max_length=64)]
SkillLevel = Annotated[int, Field(ge=1, le=5)]
