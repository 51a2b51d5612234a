"""User-facing errors.

Every problem a user can cause (a wrong name, a bad override, missing data, a corrupt
checkpoint, a diverging run) is raised as a :class:`BenchError`. The CLI prints its message
without a traceback and exits non-zero; anything else is a bug in the harness.
"""


class BenchError(Exception):
    """An error caused by input or environment, with a message that says what to do."""


class UnknownNameError(BenchError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class ConfigError(BenchError, ValueError):
    """An invalid protocol file or ``--set`` override."""


class DataNotFoundError(BenchError, FileNotFoundError):
    """A data set that is neither on disk nor downloadable."""


class CheckpointError(BenchError):
    """A checkpoint that cannot be read."""


class TrainingDivergedError(BenchError):
    """The training loss became NaN or infinite."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message: what a one-line error quotes of a library's error."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
