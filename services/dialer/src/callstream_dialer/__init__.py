"""callstream dialer service."""
