"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class SurveilError(Exception):
    """A problem the user can act on (bad input, missing weights, unreachable source)."""


class SourceError(SurveilError):
    """A video source could not be opened or stopped answering."""


class StreamError(SurveilError):
    """A packet or recording is malformed, truncated or fails its checksum."""


class CodecMismatchError(SurveilError):
    """A region was coded with a codec this station does not hold."""
