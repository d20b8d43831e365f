"""Errors a user can act on. The message says what is wrong and what to do."""


class UsageError(Exception):
    """Bad settings, bad arguments, an unreachable server: printed as one line, exit code 2."""
