"""callstream router service."""
