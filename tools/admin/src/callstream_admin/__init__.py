"""callstream-admin: the operator's command line (topics, database migrations)."""
