"""The one exception type users see: its message is a complete one-line explanation."""


class DcoderError(Exception):
    """A problem with the user's input, files or environment (not a bug in dcoder)."""
