"""The one exception type that the CLI turns into a single-line error and a non-zero exit."""


class EmbcompareError(Exception):
    """A user-facing problem: bad input, a missing file, an impossible config value.

    The message must name the file (and line) or the config key at fault.
    """
