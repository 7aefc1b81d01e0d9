"""callstream ari-gateway service."""
