"""callstream stats service."""
