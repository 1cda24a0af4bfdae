"""The one exception type users see: its message is a complete one-line explanation."""


class DcoderError(Exception):
    """A problem with the user's input, files or environment (not a bug in dcoder)."""


class Interrupted(DcoderError):
    """A forward pass was ended early from another thread: its request was cancelled."""
