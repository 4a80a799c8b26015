"""One error type for the package, and the one place that turns it into a command-line message.

Every problem a user can fix (a bad flag, a missing file, an input too small
for a model) raises [`ZooError`][] or a subclass, with a message that names
the problem and the fix. `ZooError` is a `ValueError`, so code that
catches `ValueError` keeps working. The commands (`zoo-train`,
`zoo-export`, `zoo-predict`) run through [`zoo.cli.run_command`][], which
prints the message as one line on stderr and returns the error's exit code;
`--debug` or `ZOO_DEBUG=1` shows the traceback instead.

Messages that quote another library's error keep one line of it
([`first_line`][]); a message printed on one line folds its own line
breaks ([`one_line`][]).
"""

from __future__ import annotations

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "ZooError",
    "first_line",
    "one_line",
]

EXIT_BAD_INPUT = 2  # as argparse uses for a bad flag
EXIT_DIVERGED = 3  # training produced NaN or infinite losses
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class ZooError(ValueError):
    """A problem the user can fix; `exit_code` is what a command returns for it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def first_line(error, limit=200):
    """The first line of `str(error)` with text, at most `limit` characters; `""` if none.

    For quoting another library's error inside a zoo message: Keras, NumPy or
    Pillow may put a whole traceback or a dump of the file in their message,
    and the first line is the one that says what went wrong. A longer line is
    cut after its last whole word that fits, and ends in `[...]`, so the
    message that goes on after the quote still reads.
    """
    lines = str(error).strip().splitlines()
    if not lines:
        return ""
    line = lines[0].strip()
    if len(line) <= limit:
        return line
    head = line[: limit - 6]
    words = head.rsplit(" ", 1)[0].rstrip(" ,;:([{`'\"") if " " in head else head
    return words + " [...]"


def one_line(text):
    """`text` with every run of white space, line breaks included, folded to one space."""
    return " ".join(str(text).split())
