"""One error type for the package, and the one place that turns it into a command-line message.

Every problem a user can fix (a bad flag, a missing file, an input too small
for a model) raises :class:`ZooError` or a subclass, with a message that names
the problem and the fix. ``ZooError`` is a ``ValueError``, so code that
catches ``ValueError`` keeps working. The commands (``zoo-train``,
``zoo-export``, ``zoo-predict``) run through :func:`run_command`, which
prints the message as one line on stderr and returns the error's exit code;
``--debug`` or ``ZOO_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DIVERGED",
    "EXIT_INTERRUPTED",
    "ZooError",
    "run_command",
]

EXIT_BAD_INPUT = 2  # as argparse uses for a bad flag
EXIT_DIVERGED = 3  # training produced NaN or infinite losses
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class ZooError(ValueError):
    """A problem the user can fix; ``exit_code`` is what a command returns for it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message, exit_code=None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


def _debugging(argv):
    return "--debug" in argv or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def _say(line):
    """One line on stderr in one write, so the lines of a job's processes never interleave."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_command(prog, command, argv=None):
    """Run ``command(argv)`` as the command ``prog``; return its exit status.

    A :class:`ZooError` becomes ``prog: error: MESSAGE`` on stderr and its
    exit code; Ctrl-C becomes ``prog: interrupted`` and 130. With ``--debug``
    (removed from ``argv``) or ``ZOO_DEBUG=1`` the exception propagates with
    its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = _debugging(argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        return command(argv) or 0
    except ZooError as error:
        if debug:
            raise
        message = " ".join(str(error).split())  # one line, whatever the message held
        _say(f"{prog}: error: {message}")
        return error.exit_code
    except ModuleNotFoundError as error:
        package = (error.name or "").split(".")[0]
        if debug or package not in ("tensorflow", "jax", "torch"):
            raise
        _say(
            f"{prog}: error: Keras's backend needs {package}, which is not installed. Set "
            "KERAS_BACKEND to the backend you installed (jax, tensorflow or torch), or "
            f"pip install 'zoo[{package}]'."
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        if debug:
            raise
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
