"""Defaults that the CLI's help shows, kept apart from the clients that use them so that
`livermore --help` needs no Redis client to print them."""

from __future__ import annotations

# how long a follower (`livermore alerts --follow`, LivermoreClient) keeps reconnecting to Redis
DEFAULT_RECONNECT_TIMEOUT_S = 60.0
