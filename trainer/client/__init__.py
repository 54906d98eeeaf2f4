"""Talking to the environment service: the HTTP client, replica transport, a local service, the env card."""
