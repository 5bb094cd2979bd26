"""The one error type a user sees.

Every mistake a user can make (a wrong name, a missing file, a corrupt checkpoint, an out-of-range
parameter) raises a subclass of `SnnpipeError` whose message is one line: what is wrong and what to
do. The CLI turns it into exit code 2 with no traceback; anything else is a bug and keeps its
traceback.
"""


class SnnpipeError(ValueError):
    """A user error: the message is one line naming the cause and the fix."""


class StopRequested(BaseException):
    """Work stopped on request (SIGTERM, SIGINT); ``exit_code`` is 128 + the signal. Like
    `KeyboardInterrupt` it is no error: it may be raised anywhere (the CLI's SIGTERM handler), and
    no ``except Exception`` around a library call may take it for that library's failure."""

    exit_code: int = 130


class TrainingDiverged(SnnpipeError):
    """The training loss stopped being a finite number: nothing of that epoch is saved (the last
    checkpoint, of the epoch before, stays as it was)."""
