"""Errors a user can act on.

Anything raised as a :class:`NasforgeError` is shown by the CLI as one line on stderr with
exit status 2, never as a traceback: it means the input (data, flags, config) is wrong,
not that nasforge is broken.
"""


class NasforgeError(Exception):
    """A problem with the user's input, explained in one line."""

    exit_code = 2  # what the CLI exits with; subclasses may say otherwise


class InvalidGenome(NasforgeError):
    """A genome that breaks its family's rules or the search space's bounds; says why."""


class TrialFailed(Exception):
    """An evaluation that failed for a reason worth recording (NaN loss, build error)."""


class Interrupted(NasforgeError):
    """The user stopped a search (Ctrl-C); the message says how to continue it."""

    exit_code = 130
