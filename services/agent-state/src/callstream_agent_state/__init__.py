"""callstream agent-state service."""
