"""Site configuration: the YAML site description, its loading into the business and PBX databases, and the typed
configuration services read back at start (docs/acd.md, "Configuration").

Migrations: CONFIG_MIGRATIONS (component `config`) go to the business database after the common ones;
PBX_MIGRATIONS (component `pbx`) to the PBX database, the one every Asterisk node reads PJSIP realtime from.
"""

from pathlib import Path

from callstream_common.site.model import (
    STRATEGIES,
    Agent,
    AgentConfig,
    AgentRange,
    Did,
    PauseReason,
    Pbx,
    Pjsip,
    Queue,
    Site,
    SiteConfig,
    SiteError,
    Tenant,
    derive_password,
    load_site_file,
    parse_site,
)
from callstream_common.site.store import ConfigNotFound, SiteChanges, TableChanges, apply_site, load_config

_SQL = Path(__file__).resolve().parent.parent / "sql"
CONFIG_COMPONENT = "config"
CONFIG_MIGRATIONS = _SQL / "config_migrations"
PBX_COMPONENT = "pbx"
PBX_MIGRATIONS = _SQL / "pbx_migrations"

__all__ = [
    "CONFIG_COMPONENT",
    "CONFIG_MIGRATIONS",
    "PBX_COMPONENT",
    "PBX_MIGRATIONS",
    "STRATEGIES",
    "Agent",
    "AgentConfig",
    "AgentRange",
    "ConfigNotFound",
    "Did",
    "PauseReason",
    "Pbx",
    "Pjsip",
    "Queue",
    "Site",
    "SiteChanges",
    "SiteConfig",
    "SiteError",
    "TableChanges",
    "Tenant",
    "apply_site",
    "derive_password",
    "load_config",
    "load_site_file",
    "parse_site",
]
