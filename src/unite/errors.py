"""A user mistake (bad config, missing file) is reported as one clear line, not a traceback."""


class UserError(Exception):
    """Raised for problems the user can fix; the CLI prints the message and exits with code 2."""
